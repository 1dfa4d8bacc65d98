"""The StyleGAN2 residual discriminator shared by DIGAN's image and motion
discriminators."""

import math

import keras
from keras import ops

from digan_tf.layers.discriminator_block import DiscriminatorBlock
from digan_tf.layers.discriminator_epilogue import DiscriminatorEpilogue
from digan_tf.layers.mapping_network import MappingNetwork
from digan_tf.layers.sublayers import building_sublayers
from digan_tf.models.channels import channels_at
from digan_tf.models.channels import check_channel_args
from digan_tf.utils import validation


@keras.saving.register_keras_serializable(package="digan_tf")
class ResidualDiscriminator(keras.Model):
    """Residual blocks from R down to 8, then a 4x4 epilogue (design.md section 3).

    Call `discriminator(images, labels=None)` with `images`
    [B, R, R, input_channels] and, for conditional models, integer `labels`
    [B]; returns logits [B, 1]. With `num_classes > 0` the label goes
    through its own mapping network to `cmap` and the logit is
    `sum(out * cmap) / sqrt(cmap_dim)` (projection discriminator).

    Args:
        input_channels: int, channels of the input.
        resolution: int, input size R, a power of two >= 8 (128).
        fmaps: float, channel multiplier (1.0).
        channel_max: int, channel cap (512).
        num_classes: int, classes for conditioning, 0 = unconditional.
        cmap_dim: int or None, size of the label projection; None = the
            4x4 channel count.
        mapping_layers: int, depth of the label mapping network (8).
        mbstd_group_size: int, minibatch std group size (4); the batch must
            be divisible by min(4, batch).
        mbstd_num_channels: int, minibatch std channels (1).
        conv_clamp: float or None, clamp of every conv's output except the
            residual skips (256, what the authors' training code uses; the
            class default of their networks is None). None = no clamp.

    References:
        StyleGAN2 (Karras et al. 2020) appendix B; Miyato & Koyama,
        "cGANs with Projection Discriminator" (2018).
    """

    def __init__(
        self,
        input_channels,
        resolution=128,
        fmaps=1.0,
        channel_max=512,
        num_classes=0,
        cmap_dim=None,
        mapping_layers=8,
        mbstd_group_size=4,
        mbstd_num_channels=1,
        conv_clamp=256.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        # === Config ===
        self.input_channels = validation.check_int(
            "input_channels", input_channels, 1
        )
        self.resolution, self.fmaps, self.channel_max = check_channel_args(
            resolution, fmaps, channel_max, minimum_resolution=8
        )
        self.num_classes = validation.check_int("num_classes", num_classes, 0)
        channels_4 = channels_at(4, self.fmaps, self.channel_max)
        self.cmap_dim = (
            channels_4 if cmap_dim is None
            else validation.check_int("cmap_dim", cmap_dim, 1)
        )
        self.mapping_layers = validation.check_int(
            "mapping_layers", mapping_layers, 1
        )
        self.mbstd_group_size = mbstd_group_size
        self.mbstd_num_channels = mbstd_num_channels
        self.conv_clamp = None if conv_clamp is None else (
            validation.check_float("conv_clamp", conv_clamp,
                                   exclusive_minimum=0.0))

        # === Layers ===
        self.blocks = []
        with building_sublayers(self):  # see digan_tf.layers.sublayers
            block_resolution = self.resolution
            while block_resolution > 4:
                block = DiscriminatorBlock(
                    channels_at(block_resolution, self.fmaps, self.channel_max),
                    channels_at(block_resolution // 2, self.fmaps,
                                self.channel_max),
                    from_rgb=not self.blocks,
                    in_channels=self.input_channels,
                    conv_clamp=self.conv_clamp,
                    name=f"b{block_resolution}",
                    dtype=self.dtype_policy,
                )
                self.blocks.append(block)
                block_resolution //= 2
            self.epilogue = DiscriminatorEpilogue(
                channels_4,
                output_dim=self.cmap_dim if self.num_classes else 1,
                mbstd_group_size=mbstd_group_size,
                mbstd_num_channels=mbstd_num_channels,
                conv_clamp=self.conv_clamp,
                name="b4",
                dtype=self.dtype_policy,
            )
            self.mapping = None
            if self.num_classes:
                self.mapping = MappingNetwork(
                    z_dim=0,
                    w_dim=self.cmap_dim,
                    num_layers=self.mapping_layers,
                    num_classes=self.num_classes,
                    w_avg_beta=None,
                    name="mapping",
                    dtype=self.dtype_policy,
                )

    def call(self, images, labels=None, training=None):
        images = ops.convert_to_tensor(images)
        validation.check_tensor(
            "images",
            images,
            (None, self.resolution, self.resolution, self.input_channels),
            ("float32", "float16", "bfloat16", "float64"),
        )
        if bool(self.num_classes) != (labels is not None):
            raise ValueError(
                f"`labels` must be given exactly when the discriminator is "
                f"conditional; num_classes={self.num_classes}, labels "
                f"{'given' if labels is not None else 'missing'}."
            )
        batch = images.shape[0]
        if labels is not None:
            labels = ops.convert_to_tensor(labels)
            validation.check_labels(labels, batch, self.num_classes)
        if batch is not None and self.mbstd_num_channels:
            group = min(self.mbstd_group_size, batch)
            if batch % group:
                raise ValueError(
                    f"`images`: the batch size ({batch}) must be divisible "
                    f"by min(mbstd_group_size, batch) = {group}."
                )
        # Static spatial size (it may be unknown after a dynamic reshape).
        x = ops.reshape(ops.cast(images, self.compute_dtype),
                        (-1, self.resolution, self.resolution,
                         self.input_channels))
        for block in self.blocks:
            x = block(x)
        x = self.epilogue(x)
        if self.mapping is not None:
            cmap = self.mapping(None, labels)
            x = ops.sum(x * cmap, axis=1, keepdims=True)
            x = x / math.sqrt(self.cmap_dim)
        return ops.cast(x, "float32")

    def compute_output_shape(self, images_shape, labels_shape=None):
        return (images_shape[0], 1)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.saving.serialize_keras_object(self.dtype_policy),
            "input_channels": self.input_channels,
            "resolution": self.resolution,
            "fmaps": self.fmaps,
            "channel_max": self.channel_max,
            "num_classes": self.num_classes,
            "cmap_dim": self.cmap_dim,
            "mapping_layers": self.mapping_layers,
            "mbstd_group_size": self.mbstd_group_size,
            "mbstd_num_channels": self.mbstd_num_channels,
            "conv_clamp": self.conv_clamp,
        }
