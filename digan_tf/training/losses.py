"""DIGAN's losses as pure functions of discriminator outputs (design.md section 4).

Each returns per-sample values [B]; the caller reduces over the global
batch. Non-saturating logistic loss: softplus(-x) = -log(sigmoid(x)) and
softplus(x) = -log(1 - sigmoid(x)). Image terms are the mean over each
sample's K frames of the per-frame loss, so that their batch mean is the
authors' mean over the 2B frames.
"""

import tensorflow as tf


def _softplus(motion_logits, image_logits, sign):
    """softplus(sign * Dm) + mean_k softplus(sign * Di_k) per sample, from
    motion logits [B, 1] and image logits [B, K, 1]."""
    return (tf.nn.softplus(sign * motion_logits[:, 0])
            + tf.reduce_mean(tf.nn.softplus(sign * image_logits[..., 0]),
                             axis=1))


def generator_loss(fake_motion_logits, fake_image_logits):
    """softplus(-Dm(fake)) + mean_k softplus(-Di(fake_k))."""
    return _softplus(fake_motion_logits, fake_image_logits, -1.0)


def discriminator_fake_loss(fake_motion_logits, fake_image_logits):
    """softplus(Dm(fake)) + mean_k softplus(Di(fake_k))."""
    return _softplus(fake_motion_logits, fake_image_logits, 1.0)


def discriminator_real_loss(real_motion_logits, real_image_logits):
    """softplus(-Dm(real)) + mean_k softplus(-Di(real_k))."""
    return _softplus(real_motion_logits, real_image_logits, -1.0)


def r1_penalty(motion_input_gradients, image_input_gradients):
    """|grad Dm|^2 + mean_k |grad Di_k|^2 per sample, from gradients
    [B, H, W, 7] w.r.t. the motion input and [B, K, H, W, 3] w.r.t. the
    frames the image discriminator sees."""
    motion = tf.reduce_sum(tf.square(motion_input_gradients), axis=[1, 2, 3])
    image = tf.reduce_sum(tf.square(image_input_gradients), axis=[2, 3, 4])
    return motion + tf.reduce_mean(image, axis=1)
