"""DIGAN's networks as Keras models."""
