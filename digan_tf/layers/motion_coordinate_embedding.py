"""Fourier coordinate embedding whose phases move with time (DIGAN's
motion-aware INR input)."""

import math

import keras
from keras import ops

from digan_tf.layers.coordinate_view import TRAINED
from digan_tf.layers.coordinate_view import coordinate_grid
from digan_tf.layers.equalized_dense import EqualizedDense
from digan_tf.layers.sublayers import building_sublayers
from digan_tf.utils import validation


def project_embedding(basis, phase_shift, weight):
    """Multiplies the per-frame embedding by a per-video weight.

    The embedding of frame t is `[sin(S + m_t), cos(S + m_t)]`, where `S`
    (per video and pixel) and `m_t` (per video and frame) are the two
    outputs of `MotionCoordinateEmbedding`. Since
    `sin(S + m) = sin S cos m + cos S sin m` (and likewise for cos), the
    phase shift is folded into a per-frame copy of the weight instead of
    evaluating sin and cos for every pixel of every frame:
    `E_t @ [Ws; Wc] = sin S @ (cos m Ws - sin m Wc) + cos S @ (sin m Ws +
    cos m Wc)`, with `cos m` scaling the rows of `Ws` and `Wc`.

    Args:
        basis: [B, H, W, 2F], `[sin S, cos S]`.
        phase_shift: [B, T, F], `m_t`.
        weight: [B, 2F, C], rows for the sin channels then the cos channels.

    Returns:
        [B, H, W, T, C].
    """
    num_frequencies = phase_shift.shape[-1]
    channels = weight.shape[-1]
    cos_m = ops.expand_dims(ops.cos(phase_shift), -1)  # [B, T, F, 1]
    sin_m = ops.expand_dims(ops.sin(phase_shift), -1)
    w_sin = ops.expand_dims(weight[:, :num_frequencies], 1)  # [B, 1, F, C]
    w_cos = ops.expand_dims(weight[:, num_frequencies:], 1)
    per_frame = ops.concatenate(
        [cos_m * w_sin - sin_m * w_cos, sin_m * w_sin + cos_m * w_cos],
        axis=2,
    )  # [B, T, 2F, C]
    frames = ops.shape(phase_shift)[1]
    per_frame = ops.reshape(
        ops.transpose(per_frame, (0, 2, 1, 3)),
        (-1, 2 * num_frequencies, frames * channels),
    )  # [B, 2F, T * C]
    shape = ops.shape(basis)
    flat = ops.reshape(basis, (shape[0], -1, 2 * num_frequencies))
    y = ops.matmul(flat, per_frame)  # [B, H * W, T * C]
    return ops.reshape(y, (shape[0], shape[1], shape[2], frames, channels))


@keras.saving.register_keras_serializable(package="digan_tf")
class MotionCoordinateEmbedding(keras.layers.Layer):
    """Predicts Fourier features of the pixel grid and their motion.

    From the style `w`: frequencies `F` [num_frequencies, 2] (scaled by
    `fourier_scale`) and phases `p`, giving per-pixel angles
    `S = F @ (x, y) + p`. From `w`, the motion code `z_motion` and the
    timestamps `t`: a phase shift
    `m_t = mlp(leaky_relu(affine([w, z_motion]) * t * motion_sigma, 0.01))`.
    The embedding of frame t is `[sin(S + m_t), cos(S + m_t)]`: time moves
    the phases smoothly and at low frequency (design.md section 2).

    Call `layer(w, z_motion, timestamps, view=TRAINED)` with `w` [B, w_dim],
    `z_motion` [B, motion_dim] and `timestamps` [B, T]; returns
    `(basis, phase_shift)` with `basis = [sin S, cos S]` [B, R', R',
    2 * num_frequencies] on the grid `view` (a `CoordinateView`) samples,
    R' = R at the trained view, and
    `phase_shift` [B, T, num_frequencies]; `project_embedding` applies a
    weight to the embedding they define.

    Args:
        resolution: int, grid size R.
        num_frequencies: int, Fourier features (128 in the paper).
        motion_sigma: float, time scale of the motion (0.25).
        fourier_scale: float, frequency scale (sqrt(10)).
        w_dim: int, size of the style `w`.
        motion_dim: int, size of the motion code `z_motion`.

    The angles `S` and their sin and cos are computed in float32 under
    every dtype policy: they reach tens of radians, where half precision
    would shift fine spatial detail by a visible fraction of a period.

    References:
        DIGAN (arXiv 2202.10571), section 3.1, equation (3).
    """

    def __init__(
        self,
        resolution,
        num_frequencies=128,
        motion_sigma=0.25,
        fourier_scale=math.sqrt(10.0),
        w_dim=512,
        motion_dim=512,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.resolution = validation.check_int("resolution", resolution, 1)
        self.num_frequencies = validation.check_int(
            "num_frequencies", num_frequencies, 1
        )
        self.motion_sigma = validation.check_float(
            "motion_sigma", motion_sigma, exclusive_minimum=0.0
        )
        self.fourier_scale = validation.check_float(
            "fourier_scale", fourier_scale, exclusive_minimum=0.0
        )
        self.w_dim = validation.check_int("w_dim", w_dim, 1)
        self.motion_dim = validation.check_int("motion_dim", motion_dim, 1)
        self.grid = coordinate_grid(self.resolution)
        f = self.num_frequencies
        with building_sublayers(self):  # see digan_tf.layers.sublayers
            # float32 whatever the policy: see the class docstring.
            self.xy_affine = EqualizedDense(3 * f, name="xy_affine",
                                            dtype="float32")
            self.xy_affine.build((None, self.w_dim))
            self.motion_affine = EqualizedDense(
                f, name="motion_affine", dtype=self.dtype_policy
            )
            self.motion_affine.build((None, self.w_dim + self.motion_dim))
            self.motion_mlp_0 = EqualizedDense(
                f, activation="lrelu", name="motion_mlp_0",
                dtype=self.dtype_policy,
            )
            self.motion_mlp_0.build((None, f))
            self.motion_mlp_1 = EqualizedDense(
                f, name="motion_mlp_1", dtype=self.dtype_policy
            )
            self.motion_mlp_1.build((None, f))

    def call(self, w, z_motion, timestamps, view=TRAINED):
        f = self.num_frequencies
        xy = self.xy_affine(ops.cast(w, "float32"))  # [B, 3F]
        frequencies = ops.reshape(xy[:, : 2 * f], (-1, f, 2))
        frequencies = frequencies * self.fourier_scale
        phases = xy[:, 2 * f:]  # [B, F]
        grid = self.grid if view.is_trained else coordinate_grid(
            self.resolution, view)
        size = view.grid_size(self.resolution)[0]
        grid = ops.convert_to_tensor(grid, dtype="float32")
        angles = ops.einsum("pc,bfc->bpf", grid, frequencies)
        angles = angles + ops.expand_dims(phases, 1)  # [B, R * R, F]
        basis = ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)
        basis = ops.reshape(
            ops.cast(basis, self.compute_dtype),
            (-1, size, size, 2 * f)
        )

        motion = self.motion_affine(ops.concatenate([w, z_motion], axis=-1))
        motion = ops.expand_dims(motion, 1) * ops.expand_dims(
            ops.cast(timestamps, motion.dtype), -1
        )  # [B, T, F]
        # PyTorch's default leaky ReLU (slope 0.01, no gain), unlike lrelu.
        motion = ops.leaky_relu(motion * self.motion_sigma, 0.01)
        phase_shift = self.motion_mlp_1(self.motion_mlp_0(motion))
        return basis, phase_shift

    def compute_output_shape(self, w_shape, z_motion_shape, timestamps_shape):
        # At the trained view (Keras passes shapes only).
        f = self.num_frequencies
        batch = w_shape[0]
        return (
            (batch, self.resolution, self.resolution, 2 * f),
            (batch, timestamps_shape[1], f),
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            resolution=self.resolution,
            num_frequencies=self.num_frequencies,
            motion_sigma=self.motion_sigma,
            fourier_scale=self.fourier_scale,
            w_dim=self.w_dim,
            motion_dim=self.motion_dim,
        )
        return config
