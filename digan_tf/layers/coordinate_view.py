"""Where the generator's coordinate grids sample the plane: the trained
field of view at the trained density, or denser (any output resolution) or
wider (content beyond the frame). design.md section 11.

A block of nominal grid size `n` samples x (and y, reversed) at
`k / n * 2 - 1` for `k = 0 .. n - 1`, i.e. [-1, 1) with spacing `2 / n`.
A `CoordinateView(resolution_scale=s, field_of_view=f)` samples the same
spacing divided by `s`, over a range `f` times wider and centred on the
trained one: `s * f * n` points, the first `s * (f - 1) * n / 2` of them
left of -1. Every block of a generator gets the same view, so the nearest
2x up-sampling between blocks still pairs each pixel with the coarse pixel
that covers it.
"""

import dataclasses
import math

import numpy as np

from digan_tf.utils import validation


def _count(value):
    """`value` as an int when it is one (up to rounding), else None."""
    rounded = round(value)
    return rounded if math.isclose(value, rounded, abs_tol=1e-6) else None


@dataclasses.dataclass(frozen=True)
class CoordinateView:
    """How densely and how widely the coordinate grids are sampled.

    Attributes:
        resolution_scale: float, s > 0: s times as many pixels per unit of
            the plane; a generator trained at R renders s x R.
        field_of_view: float, f >= 1: the range [-1, 1] widened f times
            about its centre, at the same density; the trained frame is the
            centre crop.
    """

    resolution_scale: float = 1.0
    field_of_view: float = 1.0

    def __post_init__(self):
        validation.check_float("resolution_scale", self.resolution_scale,
                               exclusive_minimum=0.0)
        validation.check_float("field_of_view", self.field_of_view,
                               minimum=1.0)
        for name in ("resolution_scale", "field_of_view"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"`{name}` must be finite; got "
                                 f"{getattr(self, name)}.")

    @property
    def is_trained(self):
        return self.resolution_scale == 1 and self.field_of_view == 1

    def grid_size(self, size):
        """(pixels, margin): points per side of a nominal `size` grid and
        how many of them lie left of -1. ValueError naming the field when
        either is not an integer."""
        dense = _count(self.resolution_scale * size)
        if dense is None:
            raise ValueError(
                f"`resolution_scale`={self.resolution_scale} gives a "
                f"{self.resolution_scale * size:g}-pixel grid for the "
                f"{size}-pixel block; it must make every grid a whole number "
                f"of pixels (a multiple of 1/{size}).")
        pixels = _count(self.field_of_view * dense)
        if pixels is None or (pixels - dense) % 2:
            raise ValueError(
                f"`field_of_view`={self.field_of_view} at "
                f"`resolution_scale`={self.resolution_scale} gives a "
                f"{self.field_of_view * dense:g}-pixel grid around the "
                f"{dense}-pixel frame of the {size}-pixel block; it must "
                "add a whole, equal number of pixels on each side.")
        return pixels, (pixels - dense) // 2

    def check(self, generator):
        """Raises a ValueError naming the field that does not fit the
        grids of `generator` (its smallest grid decides)."""
        self.grid_size(generator.input_resolution)

    def output_size(self, resolution):
        """Pixels per side of the rendered frames."""
        return self.grid_size(resolution)[0]


TRAINED = CoordinateView()


def coordinate_grid(size, view=TRAINED):
    """Raw (x, y) coordinates of a grid of nominal `size` under `view`,
    [pixels * pixels, 2].

    x along columns is `(k - margin) / (s * size) * 2 - 1`; y along rows is
    the same sequence reversed, so row 0 (the top) holds the largest y
    (design.md section 7). With the trained view this is
    `arange(size) / size * 2 - 1`, exact in float32 for power-of-two sizes.
    """
    pixels, margin = view.grid_size(size)
    dense = view.resolution_scale * size
    u = ((np.arange(pixels, dtype=np.float64) - margin) / dense * 2.0
         - 1.0).astype(np.float32)
    x = np.tile(u[None, :], (pixels, 1))
    y = np.tile(u[::-1, None], (1, pixels))
    return np.stack([x, y], axis=-1).reshape(pixels * pixels, 2)
