import json
import pathlib

import numpy as np
import pytest
import tensorflow as tf

import digan_tf
from digan_tf import authors_weights
from tests import testing

DATA = pathlib.Path(__file__).parent / "data"


def _t(values):
    return np.array(values, np.float32)


@pytest.fixture(scope="module")
def generator():
    tf.keras.utils.set_random_seed(1)
    return digan_tf.Generator(**testing.TINY_GENERATOR)


def _authors_paper_state_dict():
    """{name: shape} of the authors' state dict at the paper config
    (tests/data/README.md)."""
    shapes = {}
    with open(DATA / "official_paper_config_state_dict.tsv") as f:
        for line in f:
            if not line.startswith("#"):
                name, shape = line.rstrip("\n").split("\t")
                shapes[name] = tuple(json.loads(shape))
    return shapes


def test_paper_config_has_the_authors_tensors_exactly():
    """Every tensor of the authors' paper-config state dict is one of our
    variables, in their layout, and we have no other weights: the
    parameter counts are theirs exactly (63,539,218 in G with w_avg,
    56,779,266 in D), less their 62 fixed 4x4 blur filters, which we hold
    as constants."""
    models = (digan_tf.Generator(), digan_tf.ImageDiscriminator(),
              digan_tf.MotionDiscriminator())
    theirs = _authors_paper_state_dict()
    filters = {n for n in theirs if n.endswith("resample_filter")}
    assert len(filters) == 62
    ours = {}
    for name, variable, layout in authors_weights.named_variables(*models):
        ours[name] = authors_weights.to_torch_layout(
            np.zeros(variable.shape, np.float32), layout).shape
    assert ours == {n: s for n, s in theirs.items() if n not in filters}
    mapped = sum(int(np.prod(s)) for s in ours.values())
    assert mapped == sum(m.count_params() for m in models)


def test_output_shape_and_dtype(generator):
    z, z_motion = testing.latents(2, generator)
    frames = generator(z, z_motion, np.zeros((2, 3), np.float32))
    assert frames.shape == (2, 3, 64, 64, 3)
    assert frames.dtype == tf.float32
    assert np.all(np.isfinite(frames.numpy()))


def test_frames_are_independent_of_other_timestamps(generator):
    z, z_motion = testing.latents(1, generator)
    single = generator(z, z_motion, _t([[0.3]])).numpy()
    clip = generator(z, z_motion, _t([[0.0, 0.3, 0.9]])).numpy()
    np.testing.assert_allclose(single[:, 0], clip[:, 1], atol=1e-5)


def test_first_frame_ignores_motion_code_later_frames_do_not(generator):
    z, z_motion = testing.latents(1, generator)
    _, other_motion = testing.latents(1, generator, seed=5)
    a = generator(z, z_motion, _t([[0.0, 0.5]])).numpy()
    b = generator(z, other_motion, _t([[0.0, 0.5]])).numpy()
    np.testing.assert_allclose(a[:, 0], b[:, 0], atol=1e-6)
    assert np.abs(a[:, 1] - b[:, 1]).max() > 1e-3


def test_small_time_steps_change_frames_less(generator):
    z, z_motion = testing.latents(4, generator)
    t = np.tile([[0.5, 0.51, 0.9]], (4, 1)).astype(np.float32)
    frames = generator(z, z_motion, t).numpy()
    small = np.abs(frames[:, 1] - frames[:, 0]).mean()
    large = np.abs(frames[:, 2] - frames[:, 0]).mean()
    assert 0 < small < large


def test_truncation_to_zero_removes_content_code(generator):
    z, z_motion = testing.latents(2, generator)
    z[1] = -z[0]
    z_motion[1] = z_motion[0]
    frames = generator(z, z_motion, _t([[0.2], [0.2]]), truncation_psi=0.0)
    np.testing.assert_allclose(frames[0], frames[1], atol=1e-6)
    per_video = generator(z, z_motion, _t([[0.2], [0.2]]),
                          truncation_psi=np.array([0.0, 1.0], np.float32))
    np.testing.assert_allclose(per_video[0], frames[0], atol=1e-6)
    assert np.abs(per_video[1] - frames[1]).max() > 1e-3


def test_eager_graph_and_xla_agree(generator):
    z, z_motion = testing.latents(2, generator)
    t = np.array([[0.0, 0.4], [0.1, 1.5]], np.float32)
    eager = generator(z, z_motion, t).numpy()
    graph = tf.function(generator)(z, z_motion, t).numpy()
    xla = tf.function(generator, jit_compile=True)(z, z_motion, t).numpy()
    np.testing.assert_allclose(graph, eager, atol=1e-5)
    np.testing.assert_allclose(xla, eager, atol=1e-4)


def test_w_avg_tracks_styles_only_in_training(generator):
    z, z_motion = testing.latents(2, generator)
    mapping = generator.mapping
    before = mapping.w_avg.numpy().copy()
    generator(z, z_motion, _t([[0.0], [0.0]]))
    np.testing.assert_array_equal(mapping.w_avg.numpy(), before)
    w = generator.style(z).numpy()
    generator(z, z_motion, _t([[0.0], [0.0]]), training=True)
    expected = w.mean(0) + 0.995 * (before - w.mean(0))
    np.testing.assert_allclose(mapping.w_avg.numpy(), expected, atol=1e-6)
    mapping.w_avg.assign(before)


def test_labels_condition_the_generator():
    generator = digan_tf.Generator(num_classes=3, **testing.TINY_GENERATOR)
    z, z_motion = testing.latents(2, generator)
    z[1], z_motion[1] = z[0], z_motion[0]
    frames = generator(z, z_motion, _t([[0.1], [0.1]]), labels=np.array([0, 2])).numpy()
    assert np.abs(frames[0] - frames[1]).max() > 1e-3
    with pytest.raises(ValueError, match="labels.*required"):
        generator(z, z_motion, _t([[0.1], [0.1]]))
    with pytest.raises(ValueError, match=r"labels.*\[0, 2\].*from 0 to 3"):
        generator(z, z_motion, _t([[0.1], [0.1]]), labels=np.array([0, 3]))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(resolution=48), "resolution.*power of two >= 32.*48"),
        (dict(resolution=16), "resolution.*>= 32.*16"),
        (dict(fmaps=-1.0), "fmaps.*> 0.*-1"),
        (dict(z_dim=-4), "z_dim.*>= 1.*-4"),
        (dict(fmm_rank=0), "fmm_rank.*>= 1.*0"),
        (dict(motion_sigma=0.0), "motion_sigma"),
        (dict(input_resolution=128, resolution=64), "input_resolution"),
    ],
)
def test_bad_constructor_arguments_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        digan_tf.Generator(**{**testing.TINY_GENERATOR, **kwargs})


def test_bad_call_arguments_name_the_argument(generator):
    z, z_motion = testing.latents(2, generator)
    t = np.zeros((2, 2), np.float32)
    with pytest.raises(ValueError, match=r"z_content.*\[\?, 16\].*\[2, 7\]"):
        generator(z[:, :7], z_motion, t)
    with pytest.raises(ValueError, match=r"z_motion.*\[2, 16\].*\[1, 16\]"):
        generator(z, z_motion[:1], t)
    with pytest.raises(ValueError, match="timestamps.*float.*int32"):
        generator(z, z_motion, np.zeros((2, 2), np.int32))
    with pytest.raises(ValueError, match=r"timestamps.*shape \[2, \?\]"):
        generator(z, z_motion, np.zeros((2,), np.float32))
    with pytest.raises(ValueError, match="unconditional.*labels"):
        generator(z, z_motion, t, labels=np.array([0, 1]))
