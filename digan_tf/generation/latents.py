"""Latents, timestamps and rendering of sample videos."""

import numpy as np
import tensorflow as tf

# Second word of the stateless seed of the latents, so that other uses of
# the same integer seed draw other numbers.
_LATENT_STREAM = 0x4449474E  # "DIGN"


def clip_timestamps(num_frames, start_time=0.0, time_step=None):
    """Timestamps of a clip: `linspace(0, 1, num_frames)` by default
    (design.md section 2); a smaller `time_step` up-samples the frame rate and frames
    past t = 1 extrapolate."""
    if time_step is None:
        time_step = 1.0 / max(num_frames - 1, 1)
    return (start_time + time_step * np.arange(num_frames)).astype(np.float32)


def latents_from_seeds(seeds, z_dim, motion_dim):
    """(z_content [B, z_dim], z_motion [B, motion_dim]) float32 tensors,
    one video per int64 seed [B], drawn with stateless Philox: a seed gives
    the same video in any process on any machine. The exported
    `generate_from_seed` signature and `bin/generate --seed` share it."""
    seeds = tf.cast(tf.convert_to_tensor(seeds), tf.int64)

    def draw(seed):
        return tf.random.stateless_normal(
            [z_dim + motion_dim],
            seed=tf.stack([seed, tf.constant(_LATENT_STREAM, tf.int64)]))

    both = tf.map_fn(draw, seeds, fn_output_signature=tf.float32)
    return both[:, :z_dim], both[:, z_dim:]


def sample_latents(generator, num_videos, seed):
    """(z_content, z_motion) NumPy arrays of videos `seed`, `seed + 1`, ...
    """
    seeds = np.arange(seed, seed + num_videos, dtype=np.int64)
    z, z_motion = latents_from_seeds(seeds, generator.z_dim,
                                     generator.motion_dim)
    return z.numpy(), z_motion.numpy()


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
    returned as (min(a, b), max(a, b)) [..., 2] (design.md sections 2 and 5)."""
    a = tf.maximum(uniforms[..., 0], uniforms[..., 1])
    b = tf.minimum(uniforms[..., 2], uniforms[..., 3])
    return tf.stack([tf.minimum(a, b), tf.maximum(a, b)], axis=-1)
