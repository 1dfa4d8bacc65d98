"""Serving: SavedModel signatures and their limits, the export, and a REST
client of TF Serving.
"""
