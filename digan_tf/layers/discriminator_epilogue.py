"""4x4 head of the StyleGAN2 discriminator."""

import keras
from keras import ops

from digan_tf.layers.equalized_conv2d import EqualizedConv2D
from digan_tf.layers.equalized_dense import EqualizedDense
from digan_tf.layers.sublayers import building_sublayers
from digan_tf.utils import validation


def minibatch_stddev(x, group_size, num_channels=1):
    """Appends the standard deviation of `x` [N, H, W, C] across groups.

    With G = min(group_size, N), sample n belongs to group n mod (N / G);
    the std over each group is averaged over pixels and over each of the
    `num_channels` channel groups, then appended as `num_channels` channels
    (design.md section 7). N must be divisible by G.
    """
    shape = ops.shape(x)
    height, width, channels = x.shape[1], x.shape[2], x.shape[3]
    groups = ops.minimum(group_size, shape[0])
    y = ops.reshape(
        x,
        (groups, -1, height, width, num_channels, channels // num_channels),
    )
    y = y - ops.mean(y, axis=0)
    y = ops.sqrt(ops.mean(ops.square(y), axis=0) + 1e-8)  # [n, H, W, F, c]
    y = ops.mean(y, axis=(1, 2, 4))  # [n, F]
    y = ops.tile(y, (groups, 1))  # [N, F]: row n is group n mod (N / G)
    y = ops.broadcast_to(
        ops.reshape(y, (-1, 1, 1, num_channels)),
        (shape[0], height, width, num_channels),
    )
    return ops.concatenate([x, y], axis=-1)


@keras.saving.register_keras_serializable(package="digan_tf")
class DiscriminatorEpilogue(keras.layers.Layer):
    """Minibatch std, 3x3 lrelu conv, dense lrelu, dense to the output.

    Input [B, resolution, resolution, channels].

    The output has `output_dim` values: 1 logit, or the `cmap_dim` values
    that a conditional discriminator projects on the label embedding. The
    first dense layer reads the 4x4 features flattened in NHWC order (the
    importer permutes the authors' channel-major weights).

    Args:
        channels: int, channels at 4x4.
        output_dim: int, 1 or cmap_dim.
        mbstd_group_size: int, group size of the minibatch std (4).
        mbstd_num_channels: int, appended std channels (1), 0 = none.
        conv_clamp: float or None, clamp of the 3x3 conv (the dense layers
            are never clamped).
        resolution: int, height and width of the input (4).

    References:
        StyleGAN2 (Karras et al. 2020), appendix B; minibatch std from
        Karras et al. 2018, section 3.
    """

    def __init__(
        self,
        channels,
        output_dim=1,
        mbstd_group_size=4,
        mbstd_num_channels=1,
        conv_clamp=None,
        resolution=4,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.channels = validation.check_int("channels", channels, 1)
        self.output_dim = validation.check_int("output_dim", output_dim, 1)
        self.mbstd_group_size = validation.check_int(
            "mbstd_group_size", mbstd_group_size, 1
        )
        self.mbstd_num_channels = validation.check_int(
            "mbstd_num_channels", mbstd_num_channels, 0
        )
        self.resolution = validation.check_int("resolution", resolution, 1)
        self.conv_clamp = conv_clamp
        with building_sublayers(self):  # see digan_tf.layers.sublayers
            self.conv = EqualizedConv2D(
                self.channels, 3, activation="lrelu", clamp=conv_clamp,
                name="conv", dtype=self.dtype_policy,
            )
            self.conv.build((None, self.resolution, self.resolution,
                             self.channels + self.mbstd_num_channels))
            self.fc = EqualizedDense(
                self.channels, activation="lrelu", name="fc",
                dtype=self.dtype_policy,
            )
            self.fc.build((None, self.resolution ** 2 * self.channels))
            self.out = EqualizedDense(
                self.output_dim, name="out", dtype=self.dtype_policy
            )
            self.out.build((None, self.channels))

    def call(self, x):
        if self.mbstd_num_channels:
            x = minibatch_stddev(
                x, self.mbstd_group_size, self.mbstd_num_channels
            )
        x = self.conv(x)
        x = ops.reshape(x, (-1, x.shape[1] * x.shape[2] * x.shape[3]))
        return self.out(self.fc(x))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            channels=self.channels,
            output_dim=self.output_dim,
            mbstd_group_size=self.mbstd_group_size,
            mbstd_num_channels=self.mbstd_num_channels,
            conv_clamp=self.conv_clamp,
            resolution=self.resolution,
        )
        return config
