"""Latents, timestamps and rendering of sample videos."""

import numpy as np


def clip_timestamps(num_frames, start_time=0.0, time_step=None):
    """Timestamps of a clip: `linspace(0, 1, num_frames)` by default (spec
    section 2); a smaller `time_step` up-samples the frame rate and frames
    past t = 1 extrapolate."""
    if time_step is None:
        time_step = 1.0 / max(num_frames - 1, 1)
    return (start_time + time_step * np.arange(num_frames)).astype(np.float32)


def sample_latents(generator, num_videos, seed):
    """Deterministic (z_content, z_motion) from a NumPy seed."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((num_videos, generator.z_dim))
    z_motion = rng.standard_normal((num_videos, generator.motion_dim))
    return z.astype(np.float32), z_motion.astype(np.float32)


def render(generator, z, z_motion, timestamps, labels=None,
           truncation_psi=1.0, batch_size=8):
    """Frames [N, T, R, R, 3] in [-1, 1] for N videos, `batch_size` at a
    time; `timestamps` is [T] (shared) or [N, T]."""
    timestamps = np.asarray(timestamps, np.float32)
    if timestamps.ndim == 1:
        timestamps = np.tile(timestamps[None], (len(z), 1))
    videos = []
    for start in range(0, len(z), batch_size):
        part = slice(start, start + batch_size)
        videos.append(generator(
            z[part], z_motion[part], timestamps[part],
            labels=None if labels is None else labels[part],
            truncation_psi=truncation_psi,
        ).numpy())
    return np.concatenate(videos)


def ordered_beta_pair(uniforms):
    """DIGAN's pair of training times from 4 uniforms [..., 4]:
    a ~ Beta(2, 1) (max of two uniforms), b ~ Beta(1, 2) (min of two),
    returned as (min(a, b), max(a, b)) [..., 2] (spec sections 2 and 5)."""
    import tensorflow as tf

    a = tf.maximum(uniforms[..., 0], uniforms[..., 1])
    b = tf.minimum(uniforms[..., 2], uniforms[..., 3])
    return tf.stack([tf.minimum(a, b), tf.maximum(a, b)], axis=-1)
