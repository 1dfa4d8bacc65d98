"""DIGAN's losses as pure functions of discriminator outputs (spec 4).

Each returns per-sample values [B]; the caller reduces over the global
batch. Non-saturating logistic loss: softplus(-x) = -log(sigmoid(x)) and
softplus(x) = -log(1 - sigmoid(x)).
"""

import tensorflow as tf


def _per_sample(motion_logits, image_logits):
    """Motion logits [B, 1] and image logits [B, K, 1] -> [B], [B]; the
    image term is the mean over the sample's K frames."""
    return motion_logits[:, 0], tf.reduce_mean(image_logits[..., 0], axis=1)


def generator_loss(fake_motion_logits, fake_image_logits):
    """softplus(-Dm(fake)) + mean_k softplus(-Di(fake_k))."""
    motion, image = _per_sample(fake_motion_logits, fake_image_logits)
    return tf.nn.softplus(-motion) + tf.nn.softplus(-image)


def _image_softplus(image_logits, sign):
    return tf.reduce_mean(tf.nn.softplus(sign * image_logits[..., 0]),
                          axis=1)


def discriminator_loss(real_motion_logits, real_image_logits,
                       fake_motion_logits, fake_image_logits):
    """softplus(Dm(fake)) + softplus(-Dm(real)) + softplus(Di(fake)) +
    softplus(-Di(real)), the image terms averaged over each sample's
    frames."""
    return (tf.nn.softplus(fake_motion_logits[:, 0])
            + tf.nn.softplus(-real_motion_logits[:, 0])
            + _image_softplus(fake_image_logits, 1.0)
            + _image_softplus(real_image_logits, -1.0))


def r1_penalty(motion_input_gradients, image_input_gradients):
    """|grad Dm(real)|^2 + mean_k |grad Di(real_k)|^2 per sample, from
    gradients [B, H, W, 7] and [B, K, H, W, 3] w.r.t. the (augmented)
    discriminator inputs."""
    motion = tf.reduce_sum(tf.square(motion_input_gradients), axis=[1, 2, 3])
    image = tf.reduce_sum(tf.square(image_input_gradients), axis=[2, 3, 4])
    return motion + tf.reduce_mean(image, axis=1)
