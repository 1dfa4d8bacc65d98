"""Dense layer with StyleGAN's equalized learning rate."""

import math

import keras
from keras import ops

from digan_tf.layers import primitives as digan_ops
from digan_tf.utils import validation

ACTIVATIONS = ("linear", "lrelu")


@keras.saving.register_keras_serializable(package="digan_tf")
class EqualizedDense(keras.layers.Layer):
    """Fully connected layer whose weights are scaled at run time.

    The kernel is stored as N(0, 1) / lr_multiplier and multiplied by
    `lr_multiplier / sqrt(fan_in)` in every call; the bias is stored as
    `bias_initializer_value` and multiplied by `lr_multiplier`. Adam then sees
    every weight at the same scale (design.md section 2, "equalized learning
    rate").

    Args:
        units: int, output features.
        lr_multiplier: float, learning-rate multiplier (0.01 in mapping
            networks). Defaults to 1.
        bias_initializer_value: float, initial stored bias. Defaults to 0.
        activation: "linear" or "lrelu" (slope 0.2, gain sqrt(2)).
        use_bias: bool. Defaults to True.

    References:
        Karras et al., "Progressive Growing of GANs", section 4.1; DIGAN
        (arXiv 2202.10571) builds all its dense layers this way.
    """

    def __init__(
        self,
        units,
        lr_multiplier=1.0,
        bias_initializer_value=0.0,
        activation="linear",
        use_bias=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = validation.check_int("units", units, 1)
        self.lr_multiplier = validation.check_float(
            "lr_multiplier", lr_multiplier, exclusive_minimum=0.0
        )
        self.bias_initializer_value = float(bias_initializer_value)
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"`activation` must be one of {ACTIVATIONS}; got "
                f"{activation!r}."
            )
        self.activation = activation
        self.use_bias = bool(use_bias)

    def build(self, input_shape):
        fan_in = input_shape[-1]
        if fan_in is None:
            raise ValueError(
                f"{self.name}: the last input dimension must be known; got "
                f"input shape {input_shape}."
            )
        self.kernel = self.add_weight(
            name="kernel",
            shape=(fan_in, self.units),
            initializer=keras.initializers.RandomNormal(
                stddev=1.0 / self.lr_multiplier
            ),
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(self.units,),
                initializer=keras.initializers.Constant(
                    self.bias_initializer_value
                ),
            )
        self.weight_gain = self.lr_multiplier / math.sqrt(fan_in)

    def call(self, inputs):
        x = ops.matmul(inputs, self.kernel * self.weight_gain)
        if self.bias is not None:
            x = x + self.bias * self.lr_multiplier
        if self.activation == "lrelu":
            x = digan_ops.lrelu(x)
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            lr_multiplier=self.lr_multiplier,
            bias_initializer_value=self.bias_initializer_value,
            activation=self.activation,
            use_bias=self.use_bias,
        )
        return config
