"""DIGAN's image discriminator: judges single frames."""

import keras

from digan_tf.models.residual_discriminator import ResidualDiscriminator


@keras.saving.register_keras_serializable(package="digan_tf")
class ImageDiscriminator(ResidualDiscriminator):
    """Residual discriminator on one RGB frame [B, R, R, 3] (design.md section 3).

    Takes every argument of `ResidualDiscriminator` except
    `input_channels`.

    References:
        DIGAN (arXiv 2202.10571), section 3.2.
    """

    INPUT_CHANNELS = 3

    def __init__(self, resolution=128, fmaps=1.0, **kwargs):
        super().__init__(
            self.INPUT_CHANNELS, resolution=resolution, fmaps=fmaps, **kwargs
        )

    def get_config(self):
        config = super().get_config()
        del config["input_channels"]
        return config
