"""Keras layers of the DIGAN networks, one per module."""
