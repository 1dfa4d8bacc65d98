"""DiffAugment "color,translation" for frame pairs.

All frames of one sample share the same random parameters, so the motion
discriminator sees a consistent pair; the dt plane is not an image and is
never passed here (spec section 4). Everything is differentiable, so the
generator is trained through the augmentation.
"""

import tensorflow as tf

TRANSLATION_RATIO = 0.125


def _per_sample(seed, samples, shape=(), **kwargs):
    """Stateless uniforms for samples `samples.offset` ... of a batch of
    `samples.total` (so that a replica draws its slice of the global
    batch's values), shaped [B] + `shape`."""
    offset, batch, total = samples
    values = tf.random.stateless_uniform((total,), seed, **kwargs)
    return tf.reshape(values[offset: offset + batch], (-1,) + shape)


def color(frames, seed, samples):
    """Brightness, saturation and contrast jitter of `frames`
    [B, K, H, W, C]; `seed` [3, 2] (one stateless seed per jitter)."""
    shape = (1, 1, 1, 1)
    frames = frames + (_per_sample(seed[0], samples, shape) - 0.5)
    mean = tf.reduce_mean(frames, axis=-1, keepdims=True)
    frames = (frames - mean) * (_per_sample(seed[1], samples, shape) * 2.0)
    frames = frames + mean
    mean = tf.reduce_mean(frames, axis=[2, 3, 4], keepdims=True)
    return (frames - mean) * (_per_sample(seed[2], samples, shape) + 0.5) + (
        mean)


def translation(frames, seed, samples, ratio=TRANSLATION_RATIO):
    """Shifts each sample's frames [B, K, H, W, C] by the same random whole
    number of pixels (up to `ratio` of the size), filling with zeros;
    `seed` [2, 2]."""
    shape = tf.shape(frames)
    batch, frames_per_sample, height, width = (shape[0], shape[1], shape[2],
                                               shape[3])
    channels = frames.shape[-1]
    limit_y = tf.cast(tf.cast(height, tf.float32) * ratio + 0.5, tf.int32)
    limit_x = tf.cast(tf.cast(width, tf.float32) * ratio + 0.5, tf.int32)
    shift_y = _per_sample(seed[0], samples, (1,), minval=-limit_y,
                          maxval=limit_y + 1, dtype=tf.int32)
    shift_x = _per_sample(seed[1], samples, (1,), minval=-limit_x,
                          maxval=limit_x + 1, dtype=tf.int32)
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


def diff_augment(frames, seed, offset=0, total=None):
    """Color then translation on `frames` [B, K, H, W, C]; `seed` [2].

    The parameters are drawn for a batch of `total` samples (default: this
    batch) of which `frames` are samples `offset` ... `offset + B - 1`: a
    replica of a distributed step augments its slice exactly as a single
    device would augment the global batch."""
    batch = tf.shape(frames)[0]
    samples = (offset, batch, batch if total is None else total)
    seeds = tf.random.experimental.stateless_split(seed, 5)
    return translation(color(frames, seeds[:3], samples), seeds[3:],
                       samples)
