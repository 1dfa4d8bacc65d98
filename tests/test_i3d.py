"""I3D: the checkpoint's names and shapes, weights through real TF
checkpoints (DeepMind's layout and the TF Hub module's), the folded batch
norm, and the reference preprocessing."""

import os

import numpy as np
import pytest
import tensorflow as tf

from digan_tf.evaluation import features
from digan_tf.evaluation import i3d_weights
from digan_tf.models.i3d import I3D
from digan_tf.models.i3d import Unit3D
from digan_tf.models.i3d import checkpoint_variable_shapes
from tests.testing import assert_config_round_trip

SCOPE = "RGB/inception_i3d/"


@pytest.fixture(scope="module")
def random_i3d():
    return I3D().randomize(seed=1)


def _write_checkpoint(prefix, arrays):
    """A real TF (V2) checkpoint keyed by plain names, as TF1's Saver
    writes DeepMind's checkpoint and the Hub module's variables."""
    names = sorted(arrays)
    os.makedirs(os.path.dirname(prefix), exist_ok=True)
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names,
                      shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(arrays[n]) for n in names])


def _arrays(model):
    return {name: variable.numpy()
            for name, variable in model.checkpoint_variables().items()}


def test_checkpoint_table_matches_deepminds_network():
    """Facts read off kinetics-i3d's i3d.py: 57 conv + batch-norm units
    (3 stem, 9 mixed blocks of 6) with w, beta, moving mean and variance
    (no gamma), and the logits' w and b."""
    shapes = checkpoint_variable_shapes()
    assert len(shapes) == 57 * 4 + 2
    assert not [n for n in shapes if "gamma" in n]
    assert shapes[SCOPE + "Conv3d_1a_7x7/conv_3d/w"] == (7, 7, 7, 3, 64)
    assert shapes[SCOPE + "Conv3d_2c_3x3/batch_norm/moving_mean"] == (
        1, 1, 1, 1, 192)
    # Mixed_3c concatenates 128 + 192 + 96 + 64 = 480 channels
    assert shapes[SCOPE + "Mixed_4b/Branch_0/Conv3d_0a_1x1/conv_3d/w"] == (
        1, 1, 1, 480, 192)
    # DeepMind's typo: Mixed_5b's second branch-2 unit is Conv3d_0a_3x3
    assert shapes[SCOPE + "Mixed_5b/Branch_2/Conv3d_0a_3x3/conv_3d/w"] == (
        3, 3, 3, 32, 128)
    assert SCOPE + "Mixed_5c/Branch_2/Conv3d_0b_3x3/conv_3d/w" in shapes
    assert shapes[SCOPE + "Logits/Conv3d_0c_1x1/conv_3d/w"] == (
        1, 1, 1, 1024, 400)
    assert shapes[SCOPE + "Logits/Conv3d_0c_1x1/conv_3d/b"] == (400,)


def test_keras_variables_are_exactly_the_checkpoints(random_i3d):
    mapped = random_i3d.checkpoint_variables()
    assert {n: tuple(v.shape) for n, v in mapped.items()} == (
        checkpoint_variable_shapes())
    assert len(random_i3d.weights) == len(mapped)
    assert {id(v) for v in mapped.values()} == {
        id(v) for v in random_i3d.weights}
    assert_config_round_trip(random_i3d)


def test_unit_folds_batch_norm_exactly():
    """Unit3D = SAME conv3d, (x - mean) / sqrt(var + 1e-3) + beta, ReLU."""
    rng = np.random.default_rng(0)
    unit = Unit3D(5, (3, 3, 3), strides=(2, 2, 2))
    unit.build((None, None, None, None, 4))
    for variable in unit.weights:
        variable.assign(rng.uniform(0.1, 1, variable.shape).astype("f4"))
    x = rng.standard_normal((2, 5, 7, 6, 4)).astype(np.float32)
    y = tf.nn.conv3d(x, unit.w, (1, 2, 2, 2, 1), "SAME")
    expected = tf.nn.relu((y - unit.moving_mean) / tf.sqrt(
        unit.moving_variance + 1e-3) + unit.beta)
    np.testing.assert_allclose(unit(x), expected, rtol=1e-5, atol=1e-5)
    assert unit(x).shape == (2, 3, 4, 3, 5)


@pytest.mark.slow
def test_weights_round_trip_through_deepmind_and_hub_layouts(tmp_path,
                                                             random_i3d):
    arrays = _arrays(random_i3d)
    _write_checkpoint(str(tmp_path / "rgb_imagenet" / "model.ckpt"), arrays)
    hub = tmp_path / "i3d-kinetics-400_1"
    _write_checkpoint(str(hub / "variables" / "variables"),
                      {**arrays, "global_step": np.int64(7)})
    clip = np.random.default_rng(2).uniform(
        -1, 1, (1, 16, 224, 224, 3)).astype(np.float32)
    expected = random_i3d(clip).numpy()
    for path in (tmp_path / "rgb_imagenet" / "model.ckpt",
                 tmp_path / "rgb_imagenet", hub):
        loaded = i3d_weights.load(I3D(), str(path))
        for name, value in _arrays(loaded).items():
            np.testing.assert_array_equal(value, arrays[name], err_msg=name)
    np.testing.assert_array_equal(loaded(clip).numpy(), expected)
    assert expected.shape == (1, 400) and np.all(np.isfinite(expected))


def test_bad_weights_name_the_file_and_variable(tmp_path, random_i3d):
    arrays = _arrays(random_i3d)
    name = SCOPE + "Mixed_4c/Branch_1/Conv3d_0b_3x3/conv_3d/w"
    missing = {k: v for k, v in arrays.items() if k != name}
    _write_checkpoint(str(tmp_path / "missing"), missing)
    with pytest.raises(ValueError, match=(
            f"`i3d_weights`: '.*missing' does not hold the Kinetics RGB "
            f"I3D: missing '{name}' \\(shape \\[3, 3, 3, 112, 224\\]\\)")):
        i3d_weights.load(I3D(), str(tmp_path / "missing"))
    logits = SCOPE + "Logits/Conv3d_0c_1x1/conv_3d/b"
    _write_checkpoint(str(tmp_path / "classes600"),
                      {**arrays, logits: np.zeros(600, np.float32)})
    with pytest.raises(ValueError, match=(
            f"'{logits}' has shape \\[600\\], expected \\[400\\]")):
        i3d_weights.load(I3D(), str(tmp_path / "classes600.index"))
    _write_checkpoint(str(tmp_path / "other"), {"x": np.zeros(3)})
    with pytest.raises(ValueError, match="'.*other' has no I3D variables"):
        i3d_weights.load(I3D(), str(tmp_path / "other"))
    with pytest.raises(FileNotFoundError, match="`i3d_weights`: no such "
                       "checkpoint or TF Hub module directory"):
        i3d_weights.load(I3D(), str(tmp_path / "nowhere"))
    os.makedirs(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="holds no I3D weights"):
        i3d_weights.load(I3D(), str(tmp_path / "empty"))


def _legacy_bilinear(image, size):
    """TF1 resize_bilinear by hand: source coordinate = i * in / out."""
    def axis(n_in):
        source = np.arange(size) * n_in / size
        low = np.floor(source).astype(int)
        return low, np.minimum(low + 1, n_in - 1), source - low

    (y0, y1, fy), (x0, x1, fx) = axis(image.shape[0]), axis(image.shape[1])
    image = image.astype(np.float64)
    top = image[y0][:, x0] * (1 - fx[:, None]) + image[y0][:, x1] * fx[
        :, None]
    bottom = image[y1][:, x0] * (1 - fx[:, None]) + image[y1][:, x1] * fx[
        :, None]
    return top * (1 - fy[:, None, None]) + bottom * fy[:, None, None]


def test_preprocessing_is_the_reference():
    rng = np.random.default_rng(3)
    clips = rng.integers(0, 256, (2, 3, 32, 48, 3), dtype=np.uint8)
    clips[0, 0, 0, 0] = (0, 255, 128)
    videos = features.preprocess(clips).numpy()
    assert videos.shape == (2, 3, 224, 224, 3)
    expected = 2 * _legacy_bilinear(clips[1, 2], 224) / 255 - 1
    np.testing.assert_allclose(videos[1, 2], expected, atol=1e-5)
    np.testing.assert_allclose(videos[0, 0, 0, 0], (-1, 1, 2 * 128 / 255 - 1),
                               atol=1e-6)
    same = rng.integers(0, 256, (1, 1, 224, 224, 3), dtype=np.uint8)
    np.testing.assert_allclose(features.preprocess(same).numpy(),
                               2 * same.astype(float) / 255 - 1, atol=1e-6)
