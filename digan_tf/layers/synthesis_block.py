"""One resolution block of DIGAN's INR synthesis network."""

import math

import keras

from digan_tf.layers import primitives as digan_ops
from digan_tf.layers.coordinate_view import TRAINED
from digan_tf.layers.fmm_layer import FMMLayer
from digan_tf.layers.motion_coordinate_embedding import MotionCoordinateEmbedding
from digan_tf.layers.motion_coordinate_embedding import project_embedding
from digan_tf.layers.sublayers import building_sublayers
from digan_tf.layers.to_rgb import ToRGB
from digan_tf.utils import validation


@keras.saving.register_keras_serializable(package="digan_tf")
class SynthesisBlock(keras.layers.Layer):
    """A block of modulated 1x1 layers and a ToRGB output (design.md section 2).

    - First block (`in_channels=0`): a coordinate embedding on the
      `input_resolution` grid, then one FMM layer.
    - Blocks up to `input_resolution`: two FMM layers on that grid.
    - Blocks above it: features and image are up-sampled 2x (nearest), a new
      coordinate embedding at this resolution is concatenated to the
      features, then two FMM layers.
    - `num_extra_layers` more FMM layers, then ToRGB, summed into the image.

    Because every layer is 1x1, the first layer of an up-sampling block is
    computed as `up(x) @ Wx + E_t @ We = up(x @ Wx) + E_t @ We`: the
    feature half runs on the 4x smaller grid before up-sampling.

    Features are [B, H, W, T, C]: all frames of a video share the style
    weights, so each layer is one matmul per video.

    Call `block(x, img, w, z_motion, timestamps, view=TRAINED)`; `x` and
    `img` are None for the first block; `view` (a `CoordinateView`) says
    where the embedding samples the plane. Returns `(x, img)`.

    Args:
        resolution: int, nominal block resolution (4, 8, ..., R).
        out_channels: int, channels of the block's layers.
        in_channels: int, channels of the previous block, 0 for the first.
        input_resolution: int, grid size of the blocks up to it (32).
        num_extra_layers: int, additional FMM layers (1 at 128 and 256).
        fmm_rank: int, modulation rank (10).
        num_frequencies: int, Fourier features per embedding (128).
        motion_sigma: float, time scale of the motion (0.25).
        fourier_scale: float, frequency scale (sqrt(10)).
        img_channels: int, output channels (3).
        w_dim: int, style size (512).
        motion_dim: int, motion code size (512).

    References:
        DIGAN (arXiv 2202.10571), section 3.1 and appendix A.
    """

    def __init__(
        self,
        resolution,
        out_channels,
        in_channels=0,
        input_resolution=32,
        num_extra_layers=0,
        fmm_rank=10,
        num_frequencies=128,
        motion_sigma=0.25,
        fourier_scale=math.sqrt(10.0),
        img_channels=3,
        w_dim=512,
        motion_dim=512,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.resolution = validation.check_int("resolution", resolution, 4)
        self.out_channels = validation.check_int(
            "out_channels", out_channels, 1
        )
        self.in_channels = validation.check_int("in_channels", in_channels, 0)
        self.input_resolution = validation.check_int(
            "input_resolution", input_resolution, 1
        )
        self.num_extra_layers = validation.check_int(
            "num_extra_layers", num_extra_layers, 0
        )
        self.fmm_rank = fmm_rank
        self.num_frequencies = num_frequencies
        self.motion_sigma = motion_sigma
        self.fourier_scale = fourier_scale
        self.img_channels = img_channels
        self.w_dim = validation.check_int("w_dim", w_dim, 1)
        self.motion_dim = validation.check_int("motion_dim", motion_dim, 1)
        self.upsample = self.resolution > self.input_resolution
        grid = max(self.resolution, self.input_resolution)

        with building_sublayers(self):  # see digan_tf.layers.sublayers
            self.embedding = None
            if self.in_channels == 0 or self.upsample:
                self.embedding = MotionCoordinateEmbedding(
                    grid,
                    num_frequencies=num_frequencies,
                    motion_sigma=motion_sigma,
                    fourier_scale=fourier_scale,
                    w_dim=self.w_dim,
                    motion_dim=self.motion_dim,
                    name="embedding",
                    dtype=self.dtype_policy,
                )
            embedding_channels = 2 * num_frequencies if self.embedding else 0

            def fmm(name, in_features):
                return FMMLayer(
                    self.out_channels, rank=fmm_rank, in_channels=in_features,
                    w_dim=self.w_dim, name=name, dtype=self.dtype_policy,
                )

            self.fmm_layers = []
            if self.in_channels:
                self.fmm_layers.append(
                    fmm("conv0", self.in_channels + embedding_channels)
                )
                self.fmm_layers.append(fmm("conv1", self.out_channels))
            else:
                self.fmm_layers.append(fmm("conv1", embedding_channels))
            for index in range(self.num_extra_layers):
                self.fmm_layers.append(fmm(f"extra{index}", self.out_channels))
            self.to_rgb = ToRGB(
                img_channels, in_channels=self.out_channels, w_dim=self.w_dim,
                name="torgb", dtype=self.dtype_policy,
            )

    def call(self, x, img, w, z_motion, timestamps, view=TRAINED):
        layers = iter(self.fmm_layers)
        if self.embedding is not None:
            # The first layer takes [features, embedding] in split form.
            basis, phase_shift = self.embedding(w, z_motion, timestamps,
                                                view=view)
            first = next(layers)
            weight = first.activation_weight(w)
            y = project_embedding(
                basis, phase_shift, weight[:, self.in_channels:]
            )
            if x is not None:
                feature_part = digan_ops.matmul_per_video(
                    x, weight[:, : self.in_channels]
                )
                y = y + digan_ops.upsample_nearest_2x(feature_part)
            x = first.activate(y)
        for layer in layers:
            x = layer(x, w)
        rgb = self.to_rgb(x, w)
        if img is None:
            return x, rgb
        if self.upsample:
            img = digan_ops.upsample_nearest_2x(img)
        return x, img + rgb

    def compute_output_shape(self, x_shape, img_shape, w_shape,
                             z_motion_shape, timestamps_shape):
        # At the trained view (Keras passes shapes only).
        grid = (w_shape[0], self.resolution, self.resolution,
                timestamps_shape[1])
        return (*grid, self.out_channels), (*grid, self.img_channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            resolution=self.resolution,
            out_channels=self.out_channels,
            in_channels=self.in_channels,
            input_resolution=self.input_resolution,
            num_extra_layers=self.num_extra_layers,
            fmm_rank=self.fmm_rank,
            num_frequencies=self.num_frequencies,
            motion_sigma=self.motion_sigma,
            fourier_scale=self.fourier_scale,
            img_channels=self.img_channels,
            w_dim=self.w_dim,
            motion_dim=self.motion_dim,
        )
        return config
