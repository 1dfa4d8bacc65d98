"""What `bin/generate` does: load a generator, render, write files."""

import os

import keras
import numpy as np

from digan_tf import sampling
from digan_tf import video_writer
from digan_tf.models.generator import Generator


def load_generator(path):
    """A `Generator` from a .keras file, with errors naming the file."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"--model: no such file '{path}'.")
    model = keras.models.load_model(path, safe_mode=True)
    if not isinstance(model, Generator):
        raise ValueError(
            f"--model: '{path}' holds a {type(model).__name__}, expected a "
            "digan_tf Generator."
        )
    return model


def write_samples(generator, output_dir, num_videos, num_frames, fps, seed,
                  truncation_psi=1.0, start_time=0.0, time_step=None):
    """Renders `num_videos` videos and writes video_NNN.{gif,mp4} and
    grid.{gif,mp4}; returns the paths written."""
    os.makedirs(output_dir, exist_ok=True)
    z, z_motion = sampling.sample_latents(generator, num_videos, seed)
    labels = None
    if generator.num_classes:
        labels = np.arange(num_videos) % generator.num_classes
    timestamps = sampling.clip_timestamps(num_frames, start_time, time_step)
    videos = video_writer.to_uint8(sampling.render(
        generator, z, z_motion, timestamps, labels=labels,
        truncation_psi=truncation_psi,
    ))
    paths = []
    named = [(f"video_{i:03d}", v) for i, v in enumerate(videos)]
    for name, frames in named + [("grid", video_writer.grid(videos))]:
        for extension, write in (("gif", video_writer.write_gif),
                                 ("mp4", video_writer.write_mp4)):
            path = os.path.join(output_dir, f"{name}.{extension}")
            write(path, frames, fps)
            paths.append(path)
    return paths
