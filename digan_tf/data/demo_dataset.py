"""A built-in dataset that needs no download: coloured shapes moving and
bouncing over a slowly shifting gradient background.

`write_demo_dataset` renders the videos as frame folders (one class folder
per shape) and prepares them with the same code path as real data, so the
demo exercises `prepare` and the TFRecord pipeline end to end.
"""

import os
import tempfile

import numpy as np
from PIL import Image

from digan_tf.data import prepare

# One colour per shape, over dark blue-violet backgrounds; the shapes are
# the dataset's classes, in this order.
COLORS = {"circle": (1.0, 0.85, 0.2), "square": (0.2, 0.9, 1.0)}
SHAPES = tuple(COLORS)


def render_video(rng, resolution, num_frames, shape):
    """uint8 [T, R, R, 3]: one bright `shape` starting near the centre and
    crossing a darker, slowly turning gradient. Easy on purpose (one colour
    per shape, high contrast, large shapes, a centred start), so that the
    CPU demo learns it visibly within minutes (README, first command)."""
    yy, xx = np.mgrid[0:resolution, 0:resolution] / resolution
    base = np.array([0.15, 0.15, 0.4]) + rng.uniform(-0.08, 0.08, 3)
    tilt = rng.uniform(-0.2, 0.2, 3)
    color = np.array(COLORS[shape])
    radius = rng.uniform(0.18, 0.26)
    position = 0.5 + rng.uniform(-0.15, 0.15, 2)
    velocity = rng.uniform(-1, 1, 2)
    velocity *= rng.uniform(0.6, 1.2) / np.linalg.norm(velocity) / num_frames
    frames = np.empty((num_frames, resolution, resolution, 3), np.float32)
    for t in range(num_frames):
        phase = 2 * np.pi * t / num_frames
        background = base + tilt * (xx[..., None] * np.cos(phase)
                                    + yy[..., None] * np.sin(phase))
        dx, dy = xx - position[0], yy - position[1]
        if shape == "circle":
            mask = dx**2 + dy**2 <= radius**2
        else:
            mask = np.maximum(np.abs(dx), np.abs(dy)) <= radius * 0.85
        frames[t] = np.where(mask[..., None], color, background)
        position += velocity
        for axis in range(2):  # bounce off the borders
            if not radius <= position[axis] <= 1 - radius:
                velocity[axis] = -velocity[axis]
                position[axis] = np.clip(position[axis], radius, 1 - radius)
    return (np.clip(frames, 0, 1) * 255).astype(np.uint8)


def write_demo_dataset(output_dir, resolution=32, clip_length=16,
                       num_videos=256, seed=0):
    """Prepares the demo dataset in `output_dir` (labels: the shape), each
    video 2 * `clip_length` frames; returns the manifest. Re-running with
    the same arguments reuses the finished shards."""
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as frames_dir:
        for index in range(num_videos):
            shape = SHAPES[index % len(SHAPES)]
            video = render_video(rng, resolution, 2 * clip_length, shape)
            folder = os.path.join(frames_dir, shape, f"video_{index:05d}")
            os.makedirs(folder)
            for t, frame in enumerate(video):
                Image.fromarray(frame).save(
                    os.path.join(folder, f"{t:04d}.png"))
        return prepare.prepare(frames_dir, output_dir, resolution=resolution,
                               labels="parent_dir", min_frames=clip_length,
                               jpeg_quality=95)
