"""The authors' training snapshots (network-snapshot-*.pkl) straight into
our models, without PyTorch and without running anything in the file
(design.md section 10). The golden snapshot was written by the authors'
training-loop code; its outputs were computed by their code."""

import json
import pickle
import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest

from digan_tf import authors_snapshot
from digan_tf.utils import restricted_pickle
from tests.subprocesses import ROOT
from tests.subprocesses import python_command
from tests.subprocesses import run
from tests.subprocesses import run_tool

DATA = ROOT / "tests" / "data"
SNAPSHOT = DATA / "official_snapshot_r32.pkl"
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def golden():
    with np.load(DATA / "official_snapshot_r32.outputs.npz") as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def models():
    return authors_snapshot.load_models(SNAPSHOT)


def _image_logits(image_d, pairs):
    images = np.stack([pairs[..., :3], pairs[..., 3:6]], 1)
    return image_d(images.reshape(-1, *pairs.shape[1:3], 3)).numpy().reshape(
        -1, 2)


def test_torch_is_not_needed():
    assert "torch" not in sys.modules


def test_configuration_is_what_the_file_records(models):
    recorded = json.loads((DATA / "official_snapshot_r32.json").read_text())
    generator, image_d, motion_d = models
    config = generator.get_config()
    assert (config["resolution"], config["z_dim"], config["w_dim"],
            config["channel_max"], config["mapping_layers"],
            config["fmm_rank"], config["motion_sigma"]) == (
        recorded["resolution"], recorded["z_dim"], recorded["w_dim"],
        recorded["channel_max"], 2, 10, 0.25)
    assert config["fmaps"] * 32768 == recorded["channel_base"]
    for discriminator in (image_d, motion_d):
        assert discriminator.conv_clamp == recorded["d_conv_clamp"]
        assert discriminator.mbstd_group_size == 4


@pytest.mark.parametrize("psi, key", [(1.0, "out.G_ema.frames"),
                                      (0.7, "out.G_ema.frames_psi0.7")])
def test_g_ema_frames_match_the_authors_up_to_t_2(models, golden, psi, key):
    assert golden["in.timestamps"].max() == 2.0
    frames = models[0](golden["in.z_content"], golden["in.z_motion"],
                       golden["in.timestamps"], truncation_psi=psi).numpy()
    np.testing.assert_allclose(frames, golden[key], atol=TOLERANCE, rtol=0)


def test_discriminator_logits_match_with_the_recorded_clamp(models, golden):
    _, image_d, motion_d = models
    pairs = golden["in.d_input"]
    np.testing.assert_allclose(motion_d(pairs).numpy(),
                               golden["out.D.motion_logits"],
                               atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(_image_logits(image_d, pairs),
                               golden["out.D.image_logits"],
                               atol=TOLERANCE, rtol=0)
    # The clamp matters here: without it the logits move by about 22.
    unclamped = type(motion_d).from_config(
        {**motion_d.get_config(), "conv_clamp": None})
    unclamped.set_weights(motion_d.get_weights())
    assert np.abs(unclamped(pairs).numpy()
                  - golden["out.D.motion_logits"]).max() > 1.0


_FRESH_PROCESS = textwrap.dedent("""
    import sys
    import numpy as np
    import digan_tf  # registers the classes
    import keras
    golden = np.load(sys.argv[2])
    model = keras.models.load_model(sys.argv[1], safe_mode=True)
    frames = model(golden["in.z_content"], golden["in.z_motion"],
                   golden["in.timestamps"]).numpy()
    error = np.abs(frames - golden["out.G_ema.frames"]).max()
    print(type(model).__name__, float(error), "torch" in sys.modules)
""")


@pytest.mark.slow
def test_bin_import_official_pkl_to_keras_and_tf_serving(tmp_path):
    output = tmp_path / "sky.keras"
    result = run_tool("import_official", f"--pkl={SNAPSHOT}",
                      f"--output={output}",
                      f"--export_dir={tmp_path / 'serving'}")
    assert result.returncode == 0, result.stderr[-3000:]
    for path in (output, tmp_path / "sky.image_discriminator.keras",
                 tmp_path / "sky.motion_discriminator.keras",
                 tmp_path / "serving" / "sky" / "1" / "saved_model.pb"):
        assert path.exists(), path
        assert str(path.parent if path.name == "saved_model.pb" else path) \
            in result.stdout
    loaded = run(python_command("-c", _FRESH_PROCESS, output,
                                DATA / "official_snapshot_r32.outputs.npz"))
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    name, error, torch_loaded = loaded.stdout.split()
    assert name == "Generator" and float(error) < TOLERANCE
    assert torch_loaded == "False"


def _refused(tmp_path, payload, match):
    """Writes `payload` pickled, asserts the reader refuses it naming
    `match`, and that the marker file the payload would create is absent."""
    path = tmp_path / "network-snapshot-evil.pkl"
    path.write_bytes(pickle.dumps(payload))
    with pytest.raises(restricted_pickle.RefusedGlobalError, match=match):
        authors_snapshot.read(path)
    assert not (tmp_path / "ran").exists()


class _Call:
    """Pickles as `function(*args)`: what a malicious snapshot holds."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


@pytest.mark.parametrize("make, match", [
    (lambda marker: _Call(__import__("os").system, f"touch {marker}"),
     r"names the global (posix|os)\.system"),
    (lambda marker: _Call(eval, f"open({str(marker)!r}, 'w')"),
     r"names the global builtins\.eval"),
    (lambda marker: _Call(subprocess.Popen, ["touch", str(marker)]),
     r"names the global subprocess\.Popen"),
    # a gadget: getattr(builtins, "exec") called later
    (lambda marker: _Call(getattr, _Call(__import__, "builtins"), "exec"),
     r"names the global builtins\.getattr"),
])
def test_pickles_that_run_code_are_refused_and_run_nothing(tmp_path, make,
                                                          match):
    payload = {"G": make(tmp_path / "ran"), "D": None, "G_ema": None}
    _refused(tmp_path, payload, match)


def test_a_persistent_class_whose_source_would_run_is_kept_as_text(
        tmp_path, monkeypatch):
    """StyleGAN2-ADA's persistent objects carry source that their loader
    executes; here it stays text and the file is rejected as no DIGAN."""
    marker = tmp_path / "ran"
    module = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):
        raise AssertionError("never called while pickling")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    module._reconstruct_persistent_obj = _reconstruct_persistent_obj
    monkeypatch.setitem(sys.modules, "torch_utils", types.ModuleType(
        "torch_utils"))
    monkeypatch.setitem(sys.modules, "torch_utils.persistence", module)
    source = f"open({str(marker)!r}, 'w').close()\nclass Generator: pass\n"
    meta = dict(type="class", version=6, module_src=source,
                class_name="Generator", state={"_modules": {}})
    network = _Call(_reconstruct_persistent_obj, meta)
    path = tmp_path / "snapshot.pkl"
    path.write_bytes(pickle.dumps({"G": network, "D": network,
                                   "G_ema": network}))
    snapshot = authors_snapshot.read(path)
    assert snapshot["G_ema"].source == source and not marker.exists()
    with pytest.raises(ValueError, match="snapshot.pkl': D records no "
                       "constructor argument 'img_resolution'"):
        authors_snapshot.load_models(path)
    assert not marker.exists()


def test_truncated_and_corrupt_files_say_what_is_wrong(tmp_path):
    data = SNAPSHOT.read_bytes()
    truncated = tmp_path / "truncated.pkl"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(pickle.UnpicklingError,
                       match="truncated.pkl' is not a readable pickle"):
        authors_snapshot.read(truncated)
    # A tensor archive cut short inside an otherwise valid file.
    archive = data.index(b"\x80\x02\x8a\x0a")  # the first archive's magic
    corrupt = tmp_path / "corrupt.pkl"
    corrupt.write_bytes(data[:archive] + b"\x80\x02K\x07." + data[
        archive + 15:])
    with pytest.raises(pickle.UnpicklingError, match="corrupt.pkl"):
        authors_snapshot.read(corrupt)
    other = tmp_path / "other.pkl"
    other.write_bytes(pickle.dumps({"weights": [1, 2]}))
    with pytest.raises(ValueError, match="other.pkl' is not a DIGAN "
                       "training snapshot"):
        authors_snapshot.read(other)


def test_a_new_run_starts_from_the_snapshots_g_g_ema_and_d():
    from digan_tf.training import initial_weights
    from digan_tf.training import train_config
    from digan_tf.training import trainer

    config = train_config.TrainConfig(data_dir="demo", run_dir="unused",
                                      resolution=32, clip_length=8,
                                      init_from=str(SNAPSHOT))
    initial = initial_weights.load_networks(SNAPSHOT)
    model = trainer.build_model(config, 0, None, initial)
    snapshot = authors_snapshot.read(SNAPSHOT)
    # G and G_ema differ in the file; each lands where it belongs.
    g, g_ema = (snapshot[k].state_dict["mapping.fc0.weight"].T
                for k in ("G", "G_ema"))
    assert np.abs(g - g_ema).max() > 1e-3
    np.testing.assert_array_equal(
        model.generator.mapping.dense_layers[0].kernel.numpy(), g)
    np.testing.assert_array_equal(
        model.ema_generator.mapping.dense_layers[0].kernel.numpy(), g_ema)
    assert model.generator.clip_length == 8
    assert model.motion_discriminator.conv_clamp == 256
    for ours, theirs in zip(model.motion_discriminator.weights,
                            initial["motion_discriminator"].weights):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    with pytest.raises(ValueError, match=r"`init_from` '.*' does not fit "
                       r"this run: its resolution is 32, `resolution`=64"):
        initial_weights.check_fits(initial, "x.pkl", 64, 0)


@pytest.mark.slow
def test_bin_train_init_from_fine_tunes_the_snapshot(tmp_path):
    """One step from the snapshot: the discriminator's first layer (whose
    weights reach hundreds) moves by at most a few Adam steps of 0.0025."""
    import tensorflow as tf

    run_dir = tmp_path / "run"
    result = run_tool(
        "train", "--data_dir=demo", f"--run_dir={run_dir}",
        "--resolution=32", "--batch_size=4", "--clip_length=8",
        "--demo_videos=4", "--num_samples=2", "--max_steps=1",
        "--sample_every=1000", "--run_eagerly=true",
        f"--init_from={SNAPSHOT}")
    assert result.returncode == 0, result.stderr[-3000:]
    reader = tf.train.load_checkpoint(str(run_dir / "checkpoints"))
    # The motion discriminator's first variable: b32.fromrgb's kernel.
    trained = reader.get_tensor(
        "motion_discriminator/0000_kernel/.ATTRIBUTES/VARIABLE_VALUE")
    theirs = authors_snapshot.read(SNAPSHOT)["D"].state_dict[
        "videoD.b32.fromrgb.weight"]
    start = theirs.transpose(2, 3, 1, 0)
    assert np.abs(start).max() > 100
    assert 0 < np.abs(trained - start).max() < 0.05
    bad = run_tool("train", "--data_dir=demo", f"--run_dir={tmp_path / 'x'}",
                   f"--init_from={tmp_path / 'none.pkl'}")
    assert bad.returncode != 0
    assert f"--init_from: no such file '{tmp_path / 'none.pkl'}'" in \
        bad.stderr
