"""Residual down-sampling block of the StyleGAN2 discriminator."""

import math

import keras

from digan_tf.layers.equalized_conv2d import EqualizedConv2D
from digan_tf.layers.sublayers import building_sublayers
from digan_tf.utils import validation


@keras.saving.register_keras_serializable(package="digan_tf")
class DiscriminatorBlock(keras.layers.Layer):
    """`(skip(x) + conv1(conv0(x))) * sqrt(0.5)` at half the resolution.

    The first block (`from_rgb=True`) first lifts the input channels with a
    1x1 lrelu convolution. conv0 is a 3x3 lrelu conv, conv1 a 3x3 lrelu conv
    with 2x down-sampling, skip a 1x1 linear conv with 2x down-sampling and
    no bias; the sqrt(0.5) is folded into the gains of conv1 and skip
    (design.md sections 3 and 7). With `conv_clamp`, fromrgb, conv0 and conv1 clamp
    their outputs as the authors' training code does; skip never does.

    Args:
        tmp_channels: int, channels of conv0 (and of the input of a block
            that does not read the network input).
        out_channels: int, channels after down-sampling.
        from_rgb: bool, whether the block reads the network input.
        in_channels: int, channels of the network input (`from_rgb` blocks
            only; 3 for images, 7 for the motion discriminator's pairs).
        conv_clamp: float or None, see `EqualizedConv2D(clamp=...)`.

    References:
        StyleGAN2 (Karras et al. 2020), figure 7 (residual D).
    """

    def __init__(self, tmp_channels, out_channels, from_rgb=False,
                 in_channels=3, conv_clamp=None, **kwargs):
        super().__init__(**kwargs)
        self.tmp_channels = validation.check_int(
            "tmp_channels", tmp_channels, 1
        )
        self.out_channels = validation.check_int(
            "out_channels", out_channels, 1
        )
        self.from_rgb = bool(from_rgb)
        self.in_channels = validation.check_int("in_channels", in_channels, 1)
        self.conv_clamp = conv_clamp
        features = (None, None, None, self.tmp_channels)
        with building_sublayers(self):  # see digan_tf.layers.sublayers
            self.fromrgb = None
            if self.from_rgb:
                self.fromrgb = EqualizedConv2D(
                    self.tmp_channels, 1, activation="lrelu",
                    clamp=conv_clamp, name="fromrgb", dtype=self.dtype_policy,
                )
                self.fromrgb.build((None, None, None, self.in_channels))
            self.conv0 = EqualizedConv2D(
                self.tmp_channels, 3, activation="lrelu", clamp=conv_clamp,
                name="conv0", dtype=self.dtype_policy,
            )
            self.conv1 = EqualizedConv2D(
                self.out_channels, 3, activation="lrelu", down=2,
                gain=math.sqrt(0.5), clamp=conv_clamp, name="conv1",
                dtype=self.dtype_policy,
            )
            self.skip = EqualizedConv2D(
                self.out_channels, 1, down=2, use_bias=False,
                gain=math.sqrt(0.5), name="skip", dtype=self.dtype_policy,
            )
            for layer in (self.conv0, self.conv1, self.skip):
                layer.build(features)

    def call(self, x):
        if self.fromrgb is not None:
            x = self.fromrgb(x)
        return self.skip(x) + self.conv1(self.conv0(x))

    def compute_output_shape(self, input_shape):
        batch, height, width = input_shape[:3]
        return (batch, height // 2, width // 2, self.out_channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            tmp_channels=self.tmp_channels,
            out_channels=self.out_channels,
            from_rgb=self.from_rgb,
            in_channels=self.in_channels,
            conv_clamp=self.conv_clamp,
        )
        return config
