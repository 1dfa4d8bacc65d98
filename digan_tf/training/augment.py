"""DiffAugment "color,translation" for frame pairs, with explicit draws.

All frames of one sample share the same random parameters, so the motion
discriminator sees a consistent pair; the dt plane is not an image and is
never passed here (design.md section 4). Everything is differentiable, so the
generator is trained through the augmentation.

The random parameters are an `AugmentParams` (one value per sample, the
raw draws of the authors' code), drawn by `draw_params` or given by the
caller, so a step can be replayed with someone else's draws.
"""

import collections

import tensorflow as tf

TRANSLATION_RATIO = 0.125

AugmentParams = collections.namedtuple(
    "AugmentParams",
    ["brightness", "saturation", "contrast", "shift_rows", "shift_cols"])
AugmentParams.__doc__ = """Per-sample DiffAugment draws, each [B]:
`brightness`, `saturation`, `contrast` are uniforms u in [0, 1)
(x += u - 0.5; saturation scaled by 2u; contrast by u + 0.5), and
`shift_rows`, `shift_cols` int32 shifts in [-s, s], s = max_shift(size):
`out[i, j] = in[i + shift_rows, j + shift_cols]`, zero outside."""


def max_shift(size, ratio=TRANSLATION_RATIO):
    """Largest translation, in pixels, for a frame side of `size`."""
    return int(size * ratio + 0.5)


def draw_params(seed, height, width, offset, batch, total):
    """`AugmentParams` of samples `offset` ... `offset + batch - 1` of a
    batch of `total`, drawn statelessly from `seed` [2]: a replica draws its
    slice of the values a single device draws for the global batch."""
    seeds = tf.random.experimental.stateless_split(seed, 5)

    def uniform(index, **kwargs):
        values = tf.random.stateless_uniform((total,), seeds[index], **kwargs)
        return values[offset: offset + batch]

    limit_y, limit_x = max_shift(height), max_shift(width)
    return AugmentParams(
        brightness=uniform(0), saturation=uniform(1), contrast=uniform(2),
        shift_rows=uniform(3, minval=-limit_y, maxval=limit_y + 1,
                           dtype=tf.int32),
        shift_cols=uniform(4, minval=-limit_x, maxval=limit_x + 1,
                           dtype=tf.int32))


def _per_sample(values, dtype):
    return tf.reshape(tf.cast(values, dtype), (-1, 1, 1, 1, 1))


def color(frames, params):
    """Brightness, saturation and contrast jitter of `frames`
    [B, K, H, W, C]."""
    dtype = frames.dtype
    frames = frames + (_per_sample(params.brightness, dtype) - 0.5)
    mean = tf.reduce_mean(frames, axis=-1, keepdims=True)
    frames = (frames - mean) * (_per_sample(params.saturation, dtype) * 2.0)
    frames = frames + mean
    mean = tf.reduce_mean(frames, axis=[2, 3, 4], keepdims=True)
    return (frames - mean) * (_per_sample(params.contrast, dtype) + 0.5) + (
        mean)


def translation(frames, params):
    """Shifts each sample's frames [B, K, H, W, C] by its whole-pixel
    shifts, filling with zeros."""
    shape = tf.shape(frames)
    batch, frames_per_sample, height, width = (shape[0], shape[1], shape[2],
                                               shape[3])
    channels = frames.shape[-1]
    shift_y = tf.reshape(tf.cast(params.shift_rows, tf.int32), (-1, 1))
    shift_x = tf.reshape(tf.cast(params.shift_cols, tf.int32), (-1, 1))
    # [B, K, H, W, C] -> [B, H, W, K * C]: one gather moves every frame.
    x = tf.transpose(frames, (0, 2, 3, 1, 4))
    x = tf.reshape(x, (batch, height, width, frames_per_sample * channels))
    x = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
    rows = tf.clip_by_value(tf.range(height)[None] + shift_y + 1, 0,
                            height + 1)
    cols = tf.clip_by_value(tf.range(width)[None] + shift_x + 1, 0,
                            width + 1)
    x = tf.gather(x, rows, axis=1, batch_dims=1)
    x = tf.gather(x, cols, axis=2, batch_dims=1)
    x = tf.reshape(x, (batch, height, width, frames_per_sample, channels))
    return tf.ensure_shape(tf.transpose(x, (0, 3, 1, 2, 4)), frames.shape)


def diff_augment(frames, params):
    """Color then translation on `frames` [B, K, H, W, C] with the draws
    `params` (an `AugmentParams` of [B] tensors)."""
    return translation(color(frames, params), params)
