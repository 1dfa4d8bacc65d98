"""Evaluation: the FVD/KVD protocol, the distances, and I3D weights.
"""
