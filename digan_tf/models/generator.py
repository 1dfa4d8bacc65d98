"""DIGAN's generator: mapping network + INR synthesis network."""

import math

import keras
from keras import ops

from digan_tf.layers.coordinate_view import CoordinateView
from digan_tf.layers.mapping_network import MappingNetwork
from digan_tf.layers.sublayers import building_sublayers
from digan_tf.layers.synthesis_block import SynthesisBlock
from digan_tf.models.channels import channels_at
from digan_tf.models.channels import check_channel_args
from digan_tf.utils import validation

_FLOATS = ("float32", "float16", "bfloat16", "float64")


@keras.saving.register_keras_serializable(package="digan_tf")
class Generator(keras.Model):
    """Implicit neural representation generator of videos.

    A content code `z_content` is mapped to a style `w`; the synthesis
    network evaluates a per-pixel MLP, modulated by `w`, on coordinate
    embeddings whose phases move with time `t` under the motion code
    `z_motion`. Every frame depends only on its own timestamp, so any set of
    timestamps can be rendered in one call, including between training
    frames or past t = 1.

    Call `generator(z_content, z_motion, timestamps, labels=None,
    truncation_psi=1.0)` with `z_content` [B, z_dim], `z_motion`
    [B, motion_dim], `timestamps` [B, T] float32 and, for conditional models,
    integer `labels` [B]; returns frames [B, T, R, R, 3] float32, about
    [-1, 1]. `truncation_psi` (scalar or [B]) pulls `w` towards its tracked
    average.

    Every layer is per pixel, so the coordinate grids can be sampled anew:
    `resolution_scale=s` renders s x R pixels over the same frame,
    `field_of_view=f` renders f x R pixels at the trained density, the
    trained frame in the centre (`CoordinateView`, design.md section 11).
    `generator.synthesize(w, z_motion, timestamps, ...)` renders from
    styles `w` [B, w_dim] instead of content codes (what `style` gives).

    Args:
        resolution: int, output size R, a power of two >= 32 (128).
        fmaps: float, channel multiplier; a block at resolution r has
            `min(int(32768 * fmaps) // r, channel_max)` channels (1.0).
        channel_max: int, channel cap (512).
        z_dim: int, content code size (512).
        w_dim: int, style size (512).
        motion_dim: int, motion code size (512).
        num_classes: int, classes for conditioning, 0 = unconditional.
        mapping_layers: int, mapping network depth (2).
        mapping_lr_multiplier: float, mapping learning-rate multiplier (0.01).
        w_avg_beta: float, decay of the tracked average style (0.995).
        fmm_rank: int, rank of the factorized modulation (10).
        motion_sigma: float, time scale of the motion (0.25).
        num_frequencies: int, Fourier features per coordinate embedding
            (128; the embedding has twice as many channels).
        fourier_scale: float, frequency scale of the embeddings (sqrt(10)).
        input_resolution: int, grid of the blocks up to it (32).
        extra_layer_resolutions: resolutions whose block has one extra FMM
            layer ((128, 256)).
        clip_length: int, frames per training clip (16); not part of the
            network, but it sets the frame spacing `time_step` = 1 /
            (clip_length - 1) at which a video plays at the training frame
            rate (design.md section 2), so exports and `bin/generate` know it.

    Example:
        >>> g = digan_tf.Generator(resolution=32, fmaps=0.125)
        >>> z = keras.random.normal((2, 512))
        >>> frames = g(z, keras.random.normal((2, 512)), [[0.0, 0.5]] * 2)
        >>> frames.shape
        TensorShape([2, 2, 32, 32, 3])

    References:
        Yu et al., "Generating Videos with Dynamics-aware Implicit Generative
        Adversarial Networks", ICLR 2022 (arXiv 2202.10571), section 3.1.
    """

    def __init__(
        self,
        resolution=128,
        fmaps=1.0,
        channel_max=512,
        z_dim=512,
        w_dim=512,
        motion_dim=512,
        num_classes=0,
        mapping_layers=2,
        mapping_lr_multiplier=0.01,
        w_avg_beta=0.995,
        fmm_rank=10,
        motion_sigma=0.25,
        num_frequencies=128,
        fourier_scale=math.sqrt(10.0),
        input_resolution=32,
        extra_layer_resolutions=(128, 256),
        clip_length=16,
        **kwargs,
    ):
        super().__init__(**kwargs)
        # === Config ===
        self.resolution, self.fmaps, self.channel_max = check_channel_args(
            resolution, fmaps, channel_max, minimum_resolution=32
        )
        self.z_dim = validation.check_int("z_dim", z_dim, 1)
        self.w_dim = validation.check_int("w_dim", w_dim, 1)
        self.motion_dim = validation.check_int("motion_dim", motion_dim, 1)
        self.num_classes = validation.check_int("num_classes", num_classes, 0)
        self.mapping_layers = validation.check_int(
            "mapping_layers", mapping_layers, 1
        )
        self.mapping_lr_multiplier = mapping_lr_multiplier
        self.w_avg_beta = w_avg_beta
        self.fmm_rank = validation.check_int("fmm_rank", fmm_rank, 1)
        self.motion_sigma = validation.check_float(
            "motion_sigma", motion_sigma, exclusive_minimum=0.0
        )
        self.num_frequencies = validation.check_int(
            "num_frequencies", num_frequencies, 1
        )
        self.fourier_scale = validation.check_float(
            "fourier_scale", fourier_scale, exclusive_minimum=0.0
        )
        self.input_resolution = validation.check_power_of_two(
            "input_resolution", input_resolution, 4
        )
        if self.input_resolution > self.resolution:
            raise ValueError(
                f"`input_resolution` must be <= `resolution` "
                f"({self.resolution}); got {self.input_resolution}."
            )
        self.extra_layer_resolutions = tuple(
            validation.check_int("extra_layer_resolutions", r, 4)
            for r in extra_layer_resolutions
        )
        self.clip_length = validation.check_int("clip_length", clip_length, 2)

        # === Layers ===
        with building_sublayers(self):  # see digan_tf.layers.sublayers
            self.mapping = MappingNetwork(
                z_dim=self.z_dim,
                w_dim=self.w_dim,
                num_layers=self.mapping_layers,
                num_classes=self.num_classes,
                lr_multiplier=mapping_lr_multiplier,
                w_avg_beta=w_avg_beta,
                name="mapping",
                dtype=self.dtype_policy,
            )
            self.synthesis_blocks = []
            in_channels = 0
            block_resolution = 4
            while block_resolution <= self.resolution:
                out_channels = channels_at(
                    block_resolution, self.fmaps, self.channel_max
                )
                self.synthesis_blocks.append(
                    SynthesisBlock(
                        block_resolution,
                        out_channels,
                        in_channels=in_channels,
                        input_resolution=self.input_resolution,
                        num_extra_layers=int(
                            block_resolution in self.extra_layer_resolutions
                        ),
                        fmm_rank=self.fmm_rank,
                        num_frequencies=self.num_frequencies,
                        motion_sigma=self.motion_sigma,
                        fourier_scale=self.fourier_scale,
                        w_dim=self.w_dim,
                        motion_dim=self.motion_dim,
                        name=f"b{block_resolution}",
                        dtype=self.dtype_policy,
                    )
                )
                in_channels = out_channels
                block_resolution *= 2

    @property
    def time_step(self):
        """Timestamp spacing of consecutive frames at the training frame
        rate: a clip spans t in [0, 1]."""
        return 1.0 / (self.clip_length - 1)

    def check_inputs(self, z_content, z_motion, timestamps, labels=None):
        """Raises a ValueError naming the first malformed argument."""
        validation.check_tensor(
            "z_content", z_content, (None, self.z_dim), _FLOATS
        )
        batch = z_content.shape[0]
        validation.check_tensor(
            "z_motion", z_motion, (batch, self.motion_dim), _FLOATS
        )
        validation.check_tensor("timestamps", timestamps, (batch, None),
                                _FLOATS)
        if self.num_classes and labels is None:
            raise ValueError(
                f"This generator is conditional on {self.num_classes} "
                "classes: `labels` (int [B]) is required."
            )
        if not self.num_classes and labels is not None:
            raise ValueError(
                "This generator is unconditional (num_classes=0): `labels` "
                "must be None."
            )
        if labels is not None:
            validation.check_labels(labels, batch, self.num_classes)

    def style(self, z_content, labels=None, truncation_psi=1.0, training=None):
        """The (truncated) style `w` [B, w_dim] of each video."""
        w = self.mapping(z_content, labels, training=training)
        if isinstance(truncation_psi, (int, float)) and truncation_psi == 1:
            return w
        return self.mapping.truncate(w, truncation_psi)

    def call(
        self,
        z_content,
        z_motion,
        timestamps,
        labels=None,
        truncation_psi=1.0,
        training=None,
        resolution_scale=1.0,
        field_of_view=1.0,
    ):
        z_content = ops.convert_to_tensor(z_content)
        z_motion = ops.convert_to_tensor(z_motion)
        timestamps = ops.convert_to_tensor(timestamps)
        if labels is not None:
            labels = ops.convert_to_tensor(labels)
        self.check_inputs(z_content, z_motion, timestamps, labels)
        view = self.view(resolution_scale, field_of_view)
        w = self.style(z_content, labels, truncation_psi, training)
        return self._synthesize(w, z_motion, timestamps, view)

    def view(self, resolution_scale=1.0, field_of_view=1.0):
        """The `CoordinateView`, checked against this generator's grids
        (a ValueError names the argument that does not fit)."""
        view = CoordinateView(resolution_scale, field_of_view)
        view.check(self)
        return view

    def synthesize(self, w, z_motion, timestamps, resolution_scale=1.0,
                   field_of_view=1.0):
        """Frames [B, T, R', R', 3] from styles `w` [B, w_dim] (as
        `style` gives them), e.g. styles fitted to a real video."""
        w = ops.convert_to_tensor(w)
        validation.check_tensor("w", w, (None, self.w_dim),
                                _FLOATS)
        validation.check_tensor("z_motion", ops.convert_to_tensor(z_motion),
                                (w.shape[0], self.motion_dim),
                                _FLOATS)
        view = self.view(resolution_scale, field_of_view)
        return self._synthesize(ops.cast(w, self.compute_dtype), z_motion,
                                timestamps, view)

    def _synthesize(self, w, z_motion, timestamps, view):
        z_motion = ops.cast(z_motion, w.dtype)
        timestamps = ops.cast(timestamps, w.dtype)
        x = img = None
        for block in self.synthesis_blocks:
            x, img = block(x, img, w, z_motion, timestamps, view=view)
        # [B, R, R, T, 3] -> [B, T, R, R, 3]
        return ops.cast(ops.transpose(img, (0, 3, 1, 2, 4)), "float32")

    def compute_output_shape(self, z_content_shape, z_motion_shape,
                             timestamps_shape, labels_shape=None):
        # At the trained view (Keras passes shapes only).
        return (*timestamps_shape[:2], self.resolution, self.resolution, 3)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.saving.serialize_keras_object(self.dtype_policy),
            "resolution": self.resolution,
            "fmaps": self.fmaps,
            "channel_max": self.channel_max,
            "z_dim": self.z_dim,
            "w_dim": self.w_dim,
            "motion_dim": self.motion_dim,
            "num_classes": self.num_classes,
            "mapping_layers": self.mapping_layers,
            "mapping_lr_multiplier": self.mapping_lr_multiplier,
            "w_avg_beta": self.w_avg_beta,
            "fmm_rank": self.fmm_rank,
            "motion_sigma": self.motion_sigma,
            "num_frequencies": self.num_frequencies,
            "fourier_scale": self.fourier_scale,
            "input_resolution": self.input_resolution,
            "extra_layer_resolutions": list(self.extra_layer_resolutions),
            "clip_length": self.clip_length,
        }
