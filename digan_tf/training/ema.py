"""The exponential moving average of the generator's weights, the network
that is sampled, exported and evaluated (design.md section 4)."""

import tensorflow as tf


def ema_beta(global_batch, images_seen, ema_kimg=None, ema_rampup=0.05):
    """EMA decay of a step, `0.5 ** (batch / ema_nimg)` with `ema_nimg =
    min(ema_kimg * 1000, images_seen * ema_rampup)`; `ema_kimg` None =
    batch * 10 / 32, `ema_rampup` None = no ramp-up."""
    batch = tf.cast(global_batch, tf.float64)
    ema_nimg = (batch * 10 / 32 if ema_kimg is None
                else tf.constant(ema_kimg, tf.float64)) * 1000
    if ema_rampup is not None:
        ema_nimg = tf.minimum(
            ema_nimg, tf.cast(images_seen, tf.float64) * ema_rampup)
    beta = 0.5 ** (batch / tf.maximum(ema_nimg, 1e-8))
    return tf.cast(beta, tf.float32)


def update(ema_model, model, beta):
    """Moves `ema_model`'s trainable weights towards `model`'s by `beta`;
    non-trainable ones (w_avg) are copied."""
    for ema, weight in zip(ema_model.weights, model.weights):
        if weight.trainable:
            ema.assign(weight + tf.cast(beta, ema.dtype) * (ema - weight))
        else:
            ema.assign(weight)
