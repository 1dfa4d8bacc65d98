"""Modulated 1x1 layer with factorized multiplicative modulation (FMM)."""

import math

import keras
from keras import ops

from digan_tf.layers import primitives as digan_ops
from digan_tf.layers.equalized_dense import EqualizedDense
from digan_tf.layers.sublayers import building_sublayers
from digan_tf.utils import validation


@keras.saving.register_keras_serializable(package="digan_tf")
class FMMLayer(keras.layers.Layer):
    """Per-pixel linear layer whose weight matrix is modulated by a style.

    A style `w` [B, w_dim] is mapped to a rank-`rank` matrix
    `M = L @ Rt / sqrt(rank)`; the weight is `W0 * (1 + M)`, each output
    unit's weights divided by their L2 norm (demodulation), and the output is
    `lrelu(x @ W + bias)` (design.md section 2). Every frame of a video shares the
    same modulated weight, so the weight is computed once per video and the
    frames of the video are one large matmul.

    Call `layer(x, w)` with `x` [B, ..., in_channels]; `activation_weight(w)`
    and `activate(y)` expose the two halves for callers that split the
    matmul (the generator applies it to coordinate embeddings in factored
    form).

    Args:
        units: int, output channels.
        rank: int, rank of the modulation. Defaults to 10.
        in_channels: int, channels of `x`.
        w_dim: int, size of the style `w`.

    References:
        Skorokhodov et al., "Adversarial Generation of Continuous Images"
        (INR-GAN), section 3.2; DIGAN (arXiv 2202.10571) section 3.1.
    """

    def __init__(self, units, rank=10, in_channels=512, w_dim=512,
                 **kwargs):
        super().__init__(**kwargs)
        self.units = validation.check_int("units", units, 1)
        self.rank = validation.check_int("rank", rank, 1)
        self.in_channels = validation.check_int("in_channels", in_channels, 1)
        self.w_dim = validation.check_int("w_dim", w_dim, 1)
        with building_sublayers(self):  # see digan_tf.layers.sublayers
            self.affine = EqualizedDense(
                (self.in_channels + self.units) * self.rank,
                name="affine",
                dtype=self.dtype_policy,
            )
            self.affine.build((None, self.w_dim))
            # Stored [in, out], the transpose of the authors' [out, in].
            self.kernel = self.add_weight(
                name="kernel",
                shape=(self.in_channels, self.units),
                initializer=keras.initializers.RandomNormal(stddev=1.0),
            )
            self.bias = self.add_weight(
                name="bias", shape=(self.units,), initializer="zeros"
            )

    def modulated_weight(self, w):
        """Demodulated per-video weight [B, in_channels, units]."""
        styles = self.affine(w)  # [B, (in + out) * rank]
        split = self.units * self.rank
        left = ops.reshape(styles[:, :split], (-1, self.units, self.rank))
        right = ops.reshape(
            styles[:, split:], (-1, self.rank, self.in_channels)
        )
        # (L @ Rt)^T = Rt^T @ L^T: [B, in, rank] @ [B, rank, out].
        modulation = ops.matmul(
            ops.transpose(right, (0, 2, 1)), ops.transpose(left, (0, 2, 1))
        ) / math.sqrt(self.rank)
        weight = self.kernel * (modulation + 1.0)  # [B, in, out]
        norm = ops.sqrt(ops.sum(ops.square(weight), axis=1, keepdims=True))
        return weight / (norm + 1e-8)

    def activation_weight(self, w):
        """`modulated_weight` times lrelu's gain sqrt(2), the weight that
        `activate` expects: lrelu(z) = leaky_relu(sqrt(2) z), so the gain
        scales this small per-video weight and the bias instead of the
        output, a pass over the output fewer forward and backward."""
        return self.modulated_weight(w) * digan_ops.SQRT2

    def activate(self, y):
        """lrelu(x @ W + bias), given y = x @ activation_weight(w)."""
        return digan_ops.leaky_relu(y + self.bias * digan_ops.SQRT2)

    def call(self, x, w):
        return self.activate(
            digan_ops.matmul_per_video(x, self.activation_weight(w))
        )

    def compute_output_shape(self, x_shape, w_shape):
        return tuple(x_shape[:-1]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, rank=self.rank,
                      in_channels=self.in_channels, w_dim=self.w_dim)
        return config
