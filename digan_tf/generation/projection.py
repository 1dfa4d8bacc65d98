"""Inversion of real videos (`bin/project`): the codes whose video matches
a clip's frames at their timestamps.

Frame i of the clip is placed at `t = i * time_step` (the training frame
spacing, so a clip of `clip_length` frames spans [0, 1]). A subset of the
frames is fitted by Adam on the mean squared error of the rendered frames;
the others are held out, to measure how well the fitted video interpolates
between the frames it saw. Because every frame is a function of its own
timestamp, the fitted codes then render the clip at any frame rate and past
its last frame (design.md section 11).

Latent spaces (`LATENT_SPACES`):
- "w": the style `w` (from the tracked average) and `z_motion` (from 0).
  The style skips the mapping network, so it reaches more videos; the
  codes render in-process (`Generator.synthesize`, `bin/generate --codes`
  with a .keras file or run dir).
- "z": the content code `z_content` and `z_motion` (both from 0), the
  inputs of every serving signature, so the codes render anywhere
  (SavedModels and TF Serving too).
"""

import dataclasses
import json
import os

import keras
import numpy as np
import tensorflow as tf

from digan_tf.data import video_sources
from digan_tf.generation import video_writer
from digan_tf.utils import line_plot
from digan_tf.utils.atomic_files import atomic_path
from digan_tf.utils.progress import ProgressBar

LATENT_SPACES = ("w", "z")


def read_clip(path, resolution, num_frames):
    """The first `num_frames` frames of the video file or frame folder at
    `path`, uint8 [T, R, R, 3], cropped and resized as bin/prepare_data
    does. ValueError naming `video` when it is shorter or unreadable."""
    frames = []
    try:
        for image in video_sources.decode_frames(path, resolution):
            frames.append(np.asarray(image, np.uint8))
            if len(frames) == num_frames:
                break
    except video_sources.DecodeError as error:
        raise ValueError(f"`video`: cannot decode '{path}': {error}"
                         ) from error
    if len(frames) < num_frames:
        raise ValueError(f"`video`: '{path}' has {len(frames)} frames; "
                         f"`num_frames` asks for {num_frames}.")
    return np.stack(frames)


def psnr(a, b):
    """Peak signal-to-noise ratio in dB of uint8 images (peak 255)."""
    error = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64))
                    ** 2)
    return float("inf") if error == 0 else float(
        10 * np.log10(255.0 ** 2 / error))


def blend_neighbours(frames, held_out):
    """Each held-out frame as the linear blend of the nearest fitted
    frames before and after it (by index): the baseline interpolation."""
    fitted = np.setdiff1d(np.arange(len(frames)), held_out)
    blended = []
    for index in held_out:
        before = fitted[fitted < index].max()
        after = fitted[fitted > index].min()
        weight = (index - before) / (after - before)
        blended.append((1 - weight) * frames[before].astype(np.float64)
                       + weight * frames[after].astype(np.float64))
    return np.rint(np.stack(blended)).clip(0, 255).astype(np.uint8)


def split_frames(num_frames, hold_out_every):
    """(fitted, held_out) frame indices: with `hold_out_every` = k >= 2 the
    interior frames i with i % k == 1 are held out (k = 2: every other
    frame); 0 or 1 holds none out. The first and last are always fitted."""
    indices = np.arange(num_frames)
    interior = indices[1:-1]
    held = (interior[interior % hold_out_every == 1]
            if hold_out_every >= 2 else interior[:0])
    return np.setdiff1d(indices, held), held


@dataclasses.dataclass
class Projection:
    """What `project` found.

    Attributes:
        latent_space: "w" or "z".
        codes: {"w" or "z_content": [1, size], "z_motion": [1, m]} float32.
        losses: mean squared error (of [-1, 1] frames) per step.
    """

    latent_space: str
    codes: dict
    losses: list

    def render(self, generator, timestamps, **view):
        """uint8 frames [T, R', R', 3] at `timestamps` [T]; `view` is
        `resolution_scale` / `field_of_view` of `Generator.synthesize`."""
        t = tf.constant(np.asarray(timestamps, np.float32)[None])
        z_motion = self.codes["z_motion"]
        if self.latent_space == "w":
            frames = generator.synthesize(self.codes["w"], z_motion, t,
                                          **view)
        else:
            frames = generator(self.codes["z_content"], z_motion, t, **view)
        return video_writer.to_uint8(np.asarray(frames)[0])


def project(generator, frames, timestamps, latent_space="w", steps=300,
            learning_rate=0.05, seed=0, progress=True):
    """Fits codes so that `generator` renders `frames` (uint8 [T, R, R, 3])
    at `timestamps` [T]; returns a `Projection`.

    Adam with a cosine-decayed learning rate; the codes start at the
    average style (or a zero content code) and a zero motion code, plus a
    small seeded perturbation so that two seeds explore two starts.
    """
    if latent_space not in LATENT_SPACES:
        raise ValueError(f"`latent_space` must be one of {LATENT_SPACES}; "
                         f"got {latent_space!r}.")
    if generator.num_classes:
        raise ValueError("`model`: projection supports unconditional "
                         "generators only.")
    frames = np.asarray(frames)
    size = generator.resolution
    if frames.ndim != 4 or frames.shape[1:] != (size, size, 3):
        raise ValueError(f"`frames` must be [T, {size}, {size}, 3]; got "
                         f"{frames.shape}.")
    rng = np.random.default_rng(seed)
    if latent_space == "w":
        start = np.asarray(generator.mapping.w_avg)[None]
        content = keras.Variable(start + 0.01 * rng.standard_normal(
            start.shape).astype(np.float32), name="w")
    else:
        content = keras.Variable(0.01 * rng.standard_normal(
            (1, generator.z_dim)).astype(np.float32), name="z_content")
    motion = keras.Variable(0.01 * rng.standard_normal(
        (1, generator.motion_dim)).astype(np.float32), name="z_motion")
    target = tf.constant(frames.astype(np.float32)[None] / 127.5 - 1.0)
    times = tf.constant(np.asarray(timestamps, np.float32)[None])
    schedule = keras.optimizers.schedules.CosineDecay(
        learning_rate, steps, alpha=0.05)
    optimizer = keras.optimizers.Adam(schedule)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            if latent_space == "w":
                rendered = generator.synthesize(content, motion, times)
            else:
                rendered = generator(content, motion, times)
            loss = tf.reduce_mean(tf.square(rendered - target))
        variables = [content, motion]
        optimizer.apply_gradients(zip(tape.gradient(loss, variables),
                                      variables))
        return loss

    bar = ProgressBar(steps, "step", "project") if progress else None
    losses = []
    for _ in range(steps):
        losses.append(float(step()))
        if bar:
            bar.update(1, f"mse {losses[-1]:.4f}")
    if bar:
        bar.close()
    key = "w" if latent_space == "w" else "z_content"
    return Projection(latent_space, {key: content.numpy(),
                                     "z_motion": motion.numpy()}, losses)


def write_outputs(generator, projection, frames, timestamps, held_out,
                  output_dir, fps, upsample=4):
    """Writes, under `output_dir`, the fit's videos (MP4 + GIF each):
    `reconstruction` (the clip's timestamps), `side_by_side` (clip |
    reconstruction), `upsampled` (`upsample` x the frame rate over the
    clip), `continuation` (the clip, then as many frames again past its
    last); `codes.npz`, `loss.png` and `report.json` (PSNR of the fitted
    and held-out frames, and of blending neighbours for the held-out
    ones). Returns the report."""
    os.makedirs(output_dir, exist_ok=True)
    timestamps = np.asarray(timestamps, np.float32)
    step = float(timestamps[1] - timestamps[0]) if len(timestamps) > 1 \
        else generator.time_step
    reconstruction = projection.render(generator, timestamps)
    count = len(timestamps)
    videos = {
        "reconstruction": (reconstruction, fps),
        "side_by_side": (np.concatenate([frames, reconstruction], axis=2),
                         fps),
        "upsampled": (projection.render(
            generator, timestamps[0] + step / upsample
            * np.arange((count - 1) * upsample + 1)), fps * upsample),
        "continuation": (projection.render(
            generator, timestamps[0] + step * np.arange(2 * count)), fps),
    }
    paths = {}
    for name, (video, rate) in videos.items():
        for extension, write in (("mp4", video_writer.write_mp4),
                                 ("gif", video_writer.write_gif)):
            path = os.path.join(output_dir, f"{name}.{extension}")
            write(path, video, rate)
            paths[f"{name}.{extension}"] = path
    fitted = np.setdiff1d(np.arange(count), held_out)
    report = {
        "latent_space": projection.latent_space,
        "steps": len(projection.losses),
        "final_mse": projection.losses[-1],
        "fitted_frames": fitted.tolist(),
        "held_out_frames": np.asarray(held_out).tolist(),
        "psnr_fitted": psnr(reconstruction[fitted], frames[fitted]),
        "psnr_per_frame": [psnr(r, f) for r, f in zip(reconstruction,
                                                      frames)],
    }
    if len(held_out):
        report["psnr_held_out"] = psnr(reconstruction[held_out],
                                       frames[held_out])
        report["psnr_held_out_blend"] = psnr(
            blend_neighbours(frames, held_out), frames[held_out])
    codes_path = os.path.join(output_dir, "codes.npz")
    with atomic_path(codes_path) as temporary:
        with open(temporary, "wb") as f:
            np.savez(f, **projection.codes, timestamps=timestamps,
                     latent_space=projection.latent_space)
    line_plot.write_curve(os.path.join(output_dir, "loss.png"),
                          projection.losses,
                          f"projection loss (MSE, {projection.latent_space})")
    report["files"] = {**paths, "codes.npz": codes_path,
                       "loss.png": os.path.join(output_dir, "loss.png")}
    with atomic_path(os.path.join(output_dir, "report.json")) as temporary:
        with open(temporary, "w") as f:
            json.dump(report, f, indent=1)
    return report
