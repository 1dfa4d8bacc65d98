"""2-D convolution with equalized learning rate and optional 2x
down-sampling, as in the StyleGAN2 residual discriminator."""

import math

import keras
from keras import ops

from digan_tf.layers import primitives as digan_ops
from digan_tf.layers.conv2d import conv2d_valid
from digan_tf.layers.equalized_dense import ACTIVATIONS
from digan_tf.utils import validation


@keras.saving.register_keras_serializable(package="digan_tf")
class EqualizedConv2D(keras.layers.Layer):
    """Square convolution (a correlation, NHWC) scaled by 1/sqrt(fan_in).

    With `down=2` the input is low-pass filtered with the normalized
    [1, 3, 3, 1] kernel before striding (design.md section 7): a 3x3 kernel pads 2
    pixels, filters, then convolves with stride 2; a 1x1 kernel pads 1 pixel,
    filters keeping every second pixel, then convolves.

    Args:
        filters: int, output channels.
        kernel_size: int, 1 or 3.
        activation: "linear" or "lrelu".
        down: int, 1 or 2.
        use_bias: bool. Defaults to True.
        gain: float, extra output gain (sqrt(0.5) on residual branches).
        clamp: float or None, clamps the output to +-(clamp * gain) after
            the activation (the authors' `conv_clamp`); None = no clamp.

    References:
        Karras et al., "Analyzing and Improving the Image Quality of
        StyleGAN" (StyleGAN2), the residual discriminator of figure 7.
    """

    def __init__(
        self,
        filters,
        kernel_size,
        activation="linear",
        down=1,
        use_bias=True,
        gain=1.0,
        clamp=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = validation.check_int("filters", filters, 1)
        self.kernel_size = validation.check_int("kernel_size", kernel_size, 1)
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"`activation` must be one of {ACTIVATIONS}; got "
                f"{activation!r}."
            )
        self.activation = activation
        if down not in (1, 2):
            raise ValueError(f"`down` must be 1 or 2; got {down!r}.")
        self.down = down
        self.use_bias = bool(use_bias)
        self.gain = float(gain)
        self.clamp = None if clamp is None else validation.check_float(
            "clamp", clamp, exclusive_minimum=0.0)

    def build(self, input_shape):
        in_channels = input_shape[-1]
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.kernel_size, self.kernel_size, in_channels,
                   self.filters),
            initializer=keras.initializers.RandomNormal(stddev=1.0),
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=(self.filters,), initializer="zeros"
            )
        self.weight_gain = 1.0 / math.sqrt(
            in_channels * self.kernel_size * self.kernel_size
        )

    def call(self, inputs):
        # lrelu(z) * c == lrelu(c * z) for c > 0: the output gain (with
        # lrelu's sqrt(2)) scales the kernel and bias instead of the
        # output, one pass over the output fewer forward and backward.
        scale = self.gain * (digan_ops.SQRT2 if self.activation == "lrelu"
                             else 1.0)
        kernel = self.kernel * (self.weight_gain * scale)
        x = inputs
        if self.down == 2 and self.kernel_size == 1:
            x = digan_ops.blur(x, padding=1, stride=2)
            x = conv2d_valid(x, kernel)
        elif self.down == 2:
            x = digan_ops.blur(x, padding=2)
            x = conv2d_valid(x, kernel, stride=2)
        else:
            pad = self.kernel_size // 2
            if pad:
                x = ops.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
            x = conv2d_valid(x, kernel)
        if self.bias is not None:
            x = x + self.bias * scale
        if self.activation == "lrelu":
            x = digan_ops.leaky_relu(x)
        if self.clamp is not None:
            x = digan_ops.clamp(x, self.clamp * self.gain)
        return x

    def compute_output_shape(self, input_shape):
        batch, height, width = input_shape[:3]
        return (batch, height // self.down, width // self.down, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            activation=self.activation,
            down=self.down,
            use_bias=self.use_bias,
            gain=self.gain,
            clamp=self.clamp,
        )
        return config
