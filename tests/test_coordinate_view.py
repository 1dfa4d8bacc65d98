"""Rendering at other resolutions and beyond the frame (CoordinateView):
which pixels must equal the trained render, and why.

Every layer of the generator is per pixel except the nearest 2x
up-sampling between blocks above `input_resolution`, which hands each
fine pixel the coarse pixel at its top-left. So:
- widening the field of view keeps the trained frame in the centre,
  exactly: the margins are whole coarse pixels, so the up-sampling pairs
  the same pixels;
- a denser grid evaluates the coarse blocks densely too, so only pixels
  whose coordinates coincide at every block level equal the trained
  render: all of them for a generator without up-sampling blocks, every
  2^k-th for k up-sampling blocks.
Which dense pixels those are follows the authors' grid: x is sampled at
the left edge of each pixel, y (reversed) at the bottom edge, so a trained
pixel (row i, column j) is the dense pixel (s i + s - 1, s j).
"""

import keras
import numpy as np
import pytest

import digan_tf
from digan_tf.layers.coordinate_view import CoordinateView
from digan_tf.layers.coordinate_view import coordinate_grid
from digan_tf.serving import signatures
from tests import testing

RNG = np.random.default_rng(5)
Z = RNG.standard_normal((2, 16)).astype(np.float32)
MOTION = RNG.standard_normal((2, 16)).astype(np.float32)
TIMES = np.array([[0.0, 0.4, 1.3]] * 2, np.float32)


@pytest.fixture(scope="module")
def generator():
    """R = 64 on a 32 grid: one up-sampling block."""
    keras.utils.set_random_seed(3)
    return digan_tf.Generator(**testing.TINY_GENERATOR)


def _grid(size, **view):
    pixels = CoordinateView(**view).output_size(size)
    return coordinate_grid(size, CoordinateView(**view)).reshape(
        pixels, pixels, 2)


def test_grids_sample_the_trained_points_denser_and_wider():
    trained = _grid(8)
    u = np.arange(8, dtype=np.float32) / 8 * 2 - 1
    np.testing.assert_array_equal(trained[0, :, 0], u)
    np.testing.assert_array_equal(trained[:, 0, 1], u[::-1])
    np.testing.assert_array_equal(_grid(8, resolution_scale=2)[1::2, ::2],
                                  trained)
    assert _grid(8, resolution_scale=3).shape == (24, 24, 2)
    np.testing.assert_allclose(_grid(8, resolution_scale=3)[2::3, ::3],
                               trained, atol=1e-6)
    wide = _grid(8, field_of_view=1.5)
    assert wide.shape == (12, 12, 2)
    np.testing.assert_array_equal(wide[2:10, 2:10], trained)
    np.testing.assert_allclose(np.diff(wide[0, :, 0]), 0.25)
    assert wide[0, 0, 0] == -1.5 and wide[0, -1, 0] == 1.25


@pytest.mark.parametrize("view, message", [
    (dict(resolution_scale=1.01), "`resolution_scale`=1.01 gives a 32.32"),
    (dict(field_of_view=1.01), "`field_of_view`=1.01"),
    (dict(field_of_view=1.5, resolution_scale=1 / 32), "`field_of_view`"),
    (dict(field_of_view=0.5), "`field_of_view` must be >= 1.0"),
    (dict(resolution_scale=0), "`resolution_scale` must be > 0"),
    (dict(resolution_scale=float("nan")), "`resolution_scale` must be"),
])
def test_views_that_do_not_fit_the_grids_are_refused(generator, view,
                                                     message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        generator(Z, MOTION, TIMES, **view)


def test_trained_view_is_the_default_render(generator):
    np.testing.assert_array_equal(
        generator(Z, MOTION, TIMES, resolution_scale=1.0,
                  field_of_view=1.0).numpy(),
        generator(Z, MOTION, TIMES).numpy())


@pytest.mark.parametrize("field_of_view, scale", [(1.5, 1), (2, 1), (2, 2),
                                                  (1.25, 2)])
def test_the_centre_of_a_wider_view_is_the_frame(generator, field_of_view,
                                                 scale):
    frame = generator(Z, MOTION, TIMES, resolution_scale=scale).numpy()
    wide = generator(Z, MOTION, TIMES, resolution_scale=scale,
                     field_of_view=field_of_view).numpy()
    size = frame.shape[2]
    margin = (wide.shape[2] - size) // 2
    assert wide.shape[2] == round(field_of_view * size)
    np.testing.assert_allclose(
        wide[:, :, margin:margin + size, margin:margin + size], frame,
        atol=2e-5)
    # ...and the margins hold new content, not a copy or padding.
    assert np.abs(wide[:, :, :margin] - wide[:, :, margin:2 * margin]
                  ).mean() > 1e-2


def test_denser_grids_agree_where_every_level_coincides(generator):
    frame = generator(Z, MOTION, TIMES).numpy()
    dense = generator(Z, MOTION, TIMES, resolution_scale=2).numpy()
    assert dense.shape == (2, 3, 128, 128, 3)
    # One up-sampling block: fine rows 2i + 1 and columns 2j of the trained
    # render sit on their coarse pixel's coordinates; so do dense rows
    # 4i + 3 and columns 4j, at the same points.
    np.testing.assert_allclose(dense[:, :, 3::4, ::4],
                               frame[:, :, 1::2, ::2], atol=2e-5)
    # The other trained pixels see the coarse blocks at denser points in
    # the dense render: different values.
    assert np.abs(dense[:, :, 1::4, ::4] - frame[:, :, ::2, ::2]
                  ).mean() > 1e-2
    # Without up-sampling blocks every trained pixel is in the dense render.
    keras.utils.set_random_seed(4)
    flat = digan_tf.Generator(**{**testing.TINY_GENERATOR, "resolution": 32})
    np.testing.assert_allclose(
        flat(Z, MOTION, TIMES, resolution_scale=3).numpy()[:, :, 2::3, ::3],
        flat(Z, MOTION, TIMES).numpy(), atol=2e-5)


def test_serving_signatures_render_the_view_and_count_its_pixels(generator):
    view = CoordinateView(resolution_scale=2)
    limits = signatures.ServingLimits(max_pixels=2 * 128 * 128)
    served = signatures.GeneratorSignatures(generator, limits, view=view)
    video = served.generate(Z, MOTION, TIMES[:, :1], [1.0])["video"].numpy()
    expected = np.clip(np.round(
        (generator(Z, MOTION, TIMES[:, :1], resolution_scale=2).numpy() + 1)
        * 127.5), 0, 255)
    # The graph's float rounding differs from eager's on some CPUs (one
    # pixel value of 98304 on an AVX-512 machine): a value on a rounding
    # edge may land one level off, never more, and almost never.
    off = np.abs(video.astype(np.float64) - expected)
    assert video.dtype == np.uint8 and off.max() <= 1
    assert np.mean(off > 0) < 1e-3
    with pytest.raises(Exception, match="videos x frames x 128 x 128"):
        served.generate(Z, MOTION, TIMES[:, :2], [1.0])
