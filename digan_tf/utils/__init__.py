"""Helpers shared by every part: atomic writes, progress bars, argument
checks.
"""
