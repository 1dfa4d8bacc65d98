"""Generation: latents and timestamps, rendering videos, opening a
generator from any source, and video files.
"""
