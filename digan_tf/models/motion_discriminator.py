"""DIGAN's motion discriminator: judges two frames and their time gap."""

import keras

from digan_tf.models.image_discriminator import ImageDiscriminator


@keras.saving.register_keras_serializable(package="digan_tf")
class MotionDiscriminator(ImageDiscriminator):
    """Residual discriminator on [B, R, R, 7]: frame 1 RGB, frame 2 RGB and a
    constant plane holding `dt = t2 - t1`. It sees how much a scene changes
    over a time gap without ever seeing a whole video (design.md section 3).

    Takes every argument of `ResidualDiscriminator` except
    `input_channels`.

    References:
        DIGAN (arXiv 2202.10571), section 3.2, equation (5).
    """

    INPUT_CHANNELS = 7
