"""Style-modulated 1x1 projection to RGB ("skip" architecture)."""

import math

import keras
from keras import ops

from digan_tf.layers import primitives as digan_ops
from digan_tf.layers.equalized_dense import EqualizedDense
from digan_tf.layers.sublayers import building_sublayers
from digan_tf.utils import validation


@keras.saving.register_keras_serializable(package="digan_tf")
class ToRGB(keras.layers.Layer):
    """Linear 1x1 layer modulated by `s = affine(w) / sqrt(in_channels)`,
    without demodulation (design.md section 2, ToRGB). The affine bias starts at
    1 so that the initial modulation is close to identity.

    Call `layer(x, w)` with `x` [B, ..., in_channels] and `w` [B, w_dim];
    returns [B, ..., channels].

    Args:
        channels: int, output channels. Defaults to 3.
        in_channels: int, channels of `x`.
        w_dim: int, size of the style `w`.

    References:
        StyleGAN2 (Karras et al. 2020), section 4, output skips.
    """

    def __init__(self, channels=3, in_channels=512, w_dim=512, **kwargs):
        super().__init__(**kwargs)
        self.channels = validation.check_int("channels", channels, 1)
        self.in_channels = validation.check_int("in_channels", in_channels, 1)
        self.w_dim = validation.check_int("w_dim", w_dim, 1)
        with building_sublayers(self):  # see digan_tf.layers.sublayers
            self.affine = EqualizedDense(
                self.in_channels,
                bias_initializer_value=1.0,
                name="affine",
                dtype=self.dtype_policy,
            )
            self.affine.build((None, self.w_dim))
            self.kernel = self.add_weight(
                name="kernel",
                shape=(self.in_channels, self.channels),
                initializer=keras.initializers.RandomNormal(stddev=1.0),
            )
            self.bias = self.add_weight(
                name="bias", shape=(self.channels,), initializer="zeros"
            )

    def call(self, x, w):
        styles = self.affine(w) / math.sqrt(self.in_channels)  # [B, in]
        weight = ops.expand_dims(styles, -1) * self.kernel  # [B, in, out]
        return digan_ops.matmul_per_video(x, weight) + self.bias

    def compute_output_shape(self, x_shape, w_shape):
        return tuple(x_shape[:-1]) + (self.channels,)

    def get_config(self):
        config = super().get_config()
        config.update(channels=self.channels, in_channels=self.in_channels,
                      w_dim=self.w_dim)
        return config
