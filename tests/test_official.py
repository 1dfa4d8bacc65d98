"""Parity with the authors' networks: the definition of "matches the
paper" (design.md section 8)."""

import pathlib

import numpy as np
import pytest

import digan_tf
from digan_tf import authors_weights
from tests import testing

GOLDEN = pathlib.Path(__file__).parent / "data" / "digan_r128_uncond.npz"
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def golden():
    with np.load(GOLDEN) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def models():
    return authors_weights.load(GOLDEN)


def test_inferred_config(models):
    generator, image_d, motion_d = models
    config = generator.get_config()
    assert (config["resolution"], config["z_dim"], config["w_dim"],
            config["motion_dim"], config["mapping_layers"],
            config["fmm_rank"], config["channel_max"]) == (
        128, 64, 64, 64, 2, 10, 32)
    assert int(32768 * config["fmaps"]) == 2048
    assert generator.count_params() == 1199426 + 64  # + w_avg buffer
    assert image_d.count_params() + motion_d.count_params() == 223266


def test_mapping_matches(models, golden):
    ws = models[0].mapping(golden["in.z_content"]).numpy()
    np.testing.assert_allclose(ws, golden["out.ws"], atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize("psi, key", [(1.0, "out.frames"),
                                      (0.7, "out.frames_psi0.7")])
def test_frames_match(models, golden, psi, key):
    frames = models[0](golden["in.z_content"], golden["in.z_motion"],
                       golden["in.timestamps"], truncation_psi=psi).numpy()
    np.testing.assert_allclose(frames, golden[key], atol=TOLERANCE, rtol=0)


def test_motion_logits_match(models, golden):
    logits = models[2](golden["in.d_input"]).numpy()
    np.testing.assert_allclose(logits, golden["out.motion_logits"],
                               atol=TOLERANCE, rtol=0)


def test_image_logits_match(models, golden):
    pairs = golden["in.d_input"]
    # Each sample's two frames, in one batch ordered sample by sample.
    frames = np.stack([pairs[..., :3], pairs[..., 3:6]], axis=1)
    logits = models[1](frames.reshape(8, 128, 128, 3)).numpy()
    np.testing.assert_allclose(logits.reshape(4, 2),
                               golden["out.image_logits"],
                               atol=TOLERANCE, rtol=0)


def test_conditional_models_round_trip_through_the_authors_layout(tmp_path):
    generator = digan_tf.Generator(num_classes=4, **testing.TINY_GENERATOR)
    image_d = digan_tf.ImageDiscriminator(num_classes=4,
                                          **testing.TINY_DISCRIMINATOR)
    motion_d = digan_tf.MotionDiscriminator(num_classes=4,
                                            **testing.TINY_DISCRIMINATOR)
    path = tmp_path / "conditional.npz"
    authors_weights.save(path, generator, image_d, motion_d)
    with np.load(path) as data:
        assert data["G.mapping.embed.weight"].shape == (16, 4)
        assert data["D.videoD.b32.fromrgb.weight"].shape[1:] == (7, 1, 1)
        assert data["D.imageD.mapping.fc7.weight"].shape == (64, 64)
    loaded = authors_weights.load(path)
    for original, copy in zip((generator, image_d, motion_d), loaded):
        config = {**original.get_config(), "name": copy.name}
        assert copy.get_config() == config
    z, z_motion = testing.latents(2, generator)
    t, labels = np.array([[0.0, 0.6]] * 2, np.float32), np.array([3, 1])
    np.testing.assert_array_equal(
        loaded[0](z, z_motion, t, labels=labels),
        generator(z, z_motion, t, labels=labels),
    )
    images = np.random.default_rng(1).standard_normal((4, 32, 32, 7))
    images, d_labels = images.astype(np.float32), np.array([0, 1, 2, 3])
    np.testing.assert_array_equal(loaded[2](images, labels=d_labels),
                                  motion_d(images, labels=d_labels))


def _write_modified(tmp_path, golden, change):
    arrays = {k: v for k, v in golden.items()}
    change(arrays)
    path = tmp_path / "modified.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda a: a.pop("G.synthesis.b64.conv1.affine.bias"),
         "G.synthesis.b64.conv1.affine.bias.*missing"),
        (lambda a: a.update({"G.synthesis.b8.noise_strength": np.zeros(())}),
         "not part of a DIGAN network.*noise_strength"),
        (lambda a: a.update({"D.videoD.b4.out.weight": np.zeros((1, 7))}),
         r"D.videoD.b4.out.weight.*\[1, 7\]"),
        (lambda a: a.update({"D.imageD.b8.resample_filter": np.eye(4)}),
         "resample_filter.*not the"),
    ],
)
def test_bad_files_name_file_and_tensor(tmp_path, golden, change, match):
    path = _write_modified(tmp_path, golden, change)
    with pytest.raises(ValueError, match=match) as error:
        authors_weights.load(path)
    assert str(path) in str(error.value)
