"""bin/export and bin/query as users run them: TF Serving's layout, the
SavedModel loaded by processes that import only TensorFlow (the TF2 loader
and the TF1 session loader TF Serving uses), the .keras file, in-graph
request limits, and a REST round trip."""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import av
import numpy as np
import pytest
import tensorflow as tf

import digan_tf
from digan_tf import run_dir as run_dirs
from digan_tf.generation import latents
from digan_tf.generation import sources
from digan_tf.generation import video_writer
from digan_tf.serving import export
from digan_tf.serving import rest_client
from digan_tf.serving import signatures
from tests import testing
from tests.subprocesses import ROOT
from tests.subprocesses import python_command
from tests.subprocesses import quiet_env
from tests.subprocesses import run
from tests.subprocesses import run_tool

pytestmark = pytest.mark.slow  # subprocesses and real runs

TRAIN = ["--data_dir=demo", "--resolution=32", "--fmaps=0.03125",
         "--channel_max=16", "--batch_size=4", "--clip_length=8",
         "--demo_videos=8", "--num_samples=2", "--sample_every=1000",
         "--run_eagerly=true", "--max_steps=2"]
# Limits of the test export: 3 videos, 64 frames, 40 frames of 3 videos.
LIMITS = ["--max_batch=3", "--max_frames=64", f"--max_pixels={3 * 40 * 32 * 32}",
          "--frames_per_chunk=8"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("run") / "run"
    result = run_tool("train", *TRAIN, f"--run_dir={path}",
                  timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return path


@pytest.fixture(scope="module")
def export_dir(run_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("saved_models")
    result = run_tool("export", f"--run_dir={run_dir}",
                  "--name=tiny", f"--export_dir={path}", *LIMITS)
    assert result.returncode == 0, result.stderr[-3000:]
    return path


@pytest.fixture(scope="module")
def generator(run_dir):
    return run_dirs.load_ema_generator(str(run_dir))[0]


def _inputs(generator, batch=2, frames=12):
    z, z_motion = testing.latents(batch, generator, seed=5)
    t = np.tile(np.linspace(-0.2, 1.6, frames, dtype=np.float32), (batch, 1))
    return z, z_motion, t


def test_export_writes_tf_serving_layout_and_never_overwrites(
        export_dir, run_dir):
    assert sorted(os.listdir(export_dir)) == ["tiny", "tiny.keras"]
    assert sorted(os.listdir(export_dir / "tiny")) == ["1"]
    version = export_dir / "tiny" / "1"
    assert (version / "saved_model.pb").is_file()
    card = json.loads((version / export.CARD_PATH).read_text())
    assert card["resolution"] == 32 and card["clip_length"] == 8
    assert card["time_step"] == pytest.approx(1 / 7)
    assert card["num_classes"] == 0 and card["class_names"] == []
    assert card["limits"]["max_batch"] == 3
    assert card["source"].endswith("ckpt-2")
    assert card["signatures"] == ["generate_from_seed", "serving_default"]

    again = run_tool("export", f"--run_dir={run_dir}",
                 "--name=tiny", f"--export_dir={export_dir}", "--version=1")
    assert again.returncode != 0
    assert "--version=1" in again.stderr and "never overwritten" in again.stderr
    assert sorted(os.listdir(export_dir / "tiny")) == ["1"]


@pytest.mark.parametrize("flags, message", [
    (["--name=tiny"], "exactly one of --run_dir and --model"),
    (["--name=a/b", "--model=x.keras"], "no such file 'x.keras'"),
    (["--name=tiny", "--run_dir=/nonexistent"], "not a training run dir"),
    (["--name=tiny", "--model=x.keras", "--checkpoint=c"],
     "--checkpoint needs --run_dir"),
])
def test_export_flag_errors(tmp_path, flags, message):
    result = run_tool("export", f"--export_dir={tmp_path}", *flags)
    assert result.returncode != 0
    assert message in result.stderr
    assert not os.listdir(tmp_path)


def test_export_rejects_a_bad_name_and_keeps_versions(tmp_path):
    generator = digan_tf.Generator(**testing.TINY_GENERATOR)
    with pytest.raises(ValueError, match="`name` must be"):
        export.export_generator(generator, tmp_path, "a/b")
    export.export_generator(generator, tmp_path, "g")
    export.export_generator(generator, tmp_path, "g")
    export.export_generator(generator, tmp_path, "g", version=7)
    assert export.versions(tmp_path / "g") == [1, 2, 7]
    assert export.export_generator(generator, tmp_path, "g").saved_model \
        == str(tmp_path / "g" / "8")


def test_a_failed_export_leaves_no_version(tmp_path, monkeypatch):
    def fail(obj, path, signatures=None):
        os.makedirs(path)
        (pathlib.Path(path) / "saved_model.pb").write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", fail)
    generator = digan_tf.Generator(**testing.TINY_GENERATOR)
    with pytest.raises(OSError, match="disk full"):
        export.export_generator(generator, tmp_path, "g")
    assert os.listdir(tmp_path / "g") == []
    assert not (tmp_path / "g.keras").exists()


def test_run_dir_loader_reads_the_ema_generator(run_dir, generator):
    reader = tf.train.load_checkpoint(str(run_dir / "checkpoints" / "ckpt-2"))
    for key, variable in serving_checkpoint_entries(generator).items():
        stored = reader.get_tensor(
            f"ema_generator/{key}/.ATTRIBUTES/VARIABLE_VALUE")
        np.testing.assert_array_equal(variable.numpy(), stored)


def serving_checkpoint_entries(generator):
    return run_dirs.checkpoint_entries(generator.weights)


# Runs in a process that imports TensorFlow only: the SavedModel through
# tf.saved_model.load and through the TF1 session loader, feeding the
# tensor names of the SignatureDefs and filling left-out inputs from their
# defaults, as TF Serving does.
_TF_ONLY = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf

    path, inputs_path, out_path = sys.argv[1:]
    requests = dict(np.load(inputs_path))
    calls = {
        "latents": ("serving_default", {
            k: requests[k] for k in ("z_content", "z_motion", "timestamps")}),
        "seeds": ("generate_from_seed", {
            "seed": requests["seed"], "num_frames": np.int32(12)}),
    }
    results = {}
    with tf.compat.v1.Session(graph=tf.Graph()) as session:
        meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], path)
        for name, (key, given) in calls.items():
            signature = meta.signature_def[key]
            feeds = {}
            for alias, info in signature.inputs.items():
                value = given.get(alias)
                if value is None:
                    value = tf.make_ndarray(signature.defaults[alias])
                feeds[info.name] = value
            results[f"session_{name}"] = session.run(
                signature.outputs["video"].name, feed_dict=feeds)
    loaded = tf.saved_model.load(path)
    defaults = {"truncation_psi": np.float32([1]), "start_time": np.float32(0),
                "time_step": np.float32(1 / 7)}
    for name, (key, given) in calls.items():
        function = loaded.signatures[key]
        arguments = function.structured_input_signature[1]
        feeds = {k: tf.constant(given.get(k, defaults.get(k)), spec.dtype)
                 for k, spec in arguments.items()}
        results[f"loaded_{name}"] = function(**feeds)["video"].numpy()
    np.savez(out_path, **results)
    print("digan_tf" in sys.modules, "keras" in sys.modules)
""")


def test_saved_model_in_a_tensorflow_only_process(export_dir, generator,
                                                   tmp_path):
    z, z_motion, t = _inputs(generator)
    seeds = np.array([3, 11], np.int64)
    np.savez(tmp_path / "in.npz", z_content=z, z_motion=z_motion,
             timestamps=t, seed=seeds)
    result = run(python_command("-c", _TF_ONLY, export_dir / "tiny" / "1",
                                tmp_path / "in.npz", tmp_path / "out.npz"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[0] == "False"  # digan_tf was not imported
    out = np.load(tmp_path / "out.npz")

    # Same computation in this process: equal bit for bit.
    limits = signatures.ServingLimits(3, 64, 3 * 40 * 32 * 32, 8)
    here = signatures.GeneratorSignatures(generator, limits)
    from_latents = here.video(z, z_motion, t)["video"].numpy()
    from_seed = here.generate_from_seed(seeds, np.int32(12))["video"].numpy()
    for loader in ("session", "loaded"):
        np.testing.assert_array_equal(out[f"{loader}_latents"], from_latents)
        np.testing.assert_array_equal(out[f"{loader}_seeds"], from_seed)

    # And the Keras generator, unchunked: chunking may move a value across
    # a rounding boundary, never further.
    keras_video = video_writer.to_uint8(generator(z, z_motion, t).numpy())
    difference = np.abs(from_latents.astype(int) - keras_video)
    assert difference.max() <= 1 and (difference > 0).mean() < 1e-3
    z_seed, z_motion_seed = latents.latents_from_seeds(seeds, 512, 512)
    times = np.tile(np.arange(12, dtype=np.float32) / 7, (2, 1))
    keras_seed = video_writer.to_uint8(
        generator(z_seed, z_motion_seed, times).numpy())
    assert np.abs(from_seed.astype(int) - keras_seed).max() <= 1


_KERAS_FILE = textwrap.dedent("""
    import sys
    import numpy as np
    import digan_tf  # registers the classes
    import keras

    model = keras.models.load_model(sys.argv[1])  # safe_mode on
    inputs = np.load(sys.argv[2])
    np.save(sys.argv[3], model(inputs["z"], inputs["m"], inputs["t"]).numpy())
    print(model.clip_length, model.resolution)
""")


def test_keras_file_in_a_fresh_process(export_dir, generator, tmp_path):
    z, z_motion, t = _inputs(generator)
    np.savez(tmp_path / "in.npz", z=z, m=z_motion, t=t)
    result = run(python_command("-c", _KERAS_FILE,
                                export_dir / "tiny.keras",
                                tmp_path / "in.npz", tmp_path / "out.npy"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["8", "32"]
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"),
                                  generator(z, z_motion, t).numpy())


def test_saved_model_cli_lists_the_signatures(export_dir):
    cli = pathlib.Path(sys.executable).parent / "saved_model_cli"
    result = subprocess.run(
        [str(cli), "show", "--dir", str(export_dir / "tiny" / "1"), "--all"],
        capture_output=True, text=True, timeout=300, env=quiet_env())
    assert result.returncode == 0, result.stderr[-3000:]
    for text in ("signature_def['serving_default']",
                 "signature_def['generate_from_seed']",
                 "inputs['z_content']", "inputs['timestamps']",
                 "inputs['seed']", "inputs['num_frames']",
                 "outputs['video']", "dtype: DT_UINT8",
                 "shape: (-1, -1, 32, 32, 3)"):
        assert text in result.stdout


@pytest.mark.parametrize("batch, frames, message", [
    (4, 8, "too many videos: at most 3 per request"),
    (1, 65, "too many frames: at most 64 per video"),
    (3, 48, f"must be at most {3 * 40 * 32 * 32}"),
])
def test_limits_fail_inside_the_graph(export_dir, batch, frames, message):
    loaded = tf.saved_model.load(str(export_dir / "tiny" / "1"))
    function = loaded.signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        function(z_content=tf.zeros([batch, 512]),
                 z_motion=tf.zeros([batch, 512]),
                 timestamps=tf.zeros([batch, frames]),
                 truncation_psi=tf.ones([1]))
    video = function(z_content=tf.zeros([2, 512]), z_motion=tf.zeros([2, 512]),
                     timestamps=tf.zeros([2, 48]),
                     truncation_psi=tf.ones([1]))["video"]
    assert video.shape == (2, 48, 32, 32, 3)  # just under the pixel limit


def test_conditional_export_checks_labels(tmp_path):
    generator = digan_tf.Generator(num_classes=3, **testing.TINY_GENERATOR)
    export.export_generator(generator, tmp_path, "c", class_names=["a", "b",
                                                                   "c"])
    loaded = tf.saved_model.load(str(tmp_path / "c" / "1"))
    seeds = tf.constant([4, 5], tf.int64)
    call = dict(seed=seeds, num_frames=tf.constant(3),
                start_time=tf.constant(0.0), time_step=tf.constant(0.5),
                truncation_psi=tf.constant([0.7, 1.0]))
    video = loaded.signatures["generate_from_seed"](
        labels=tf.constant([2, 0], tf.int64), **call)["video"].numpy()
    z, z_motion = latents.latents_from_seeds(seeds, 16, 16)
    expected = video_writer.to_uint8(generator(
        z, z_motion, np.tile(np.float32([0, 0.5, 1]), (2, 1)),
        labels=np.array([2, 0]), truncation_psi=np.float32([0.7, 1.0])))
    assert np.abs(video.astype(int) - expected).max() <= 1
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"labels must be in \[0, 3\)"):
        loaded.signatures["generate_from_seed"](
            labels=tf.constant([3, 0], tf.int64), **call)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="truncation_psi must hold 1 value or one per"):
        loaded.signatures["generate_from_seed"](
            labels=tf.constant([1, 0], tf.int64),
            **dict(call, truncation_psi=tf.constant([0.5, 0.5, 0.5])))


def test_all_generator_sources_render_the_same_video(
        run_dir, export_dir, generator):
    z, z_motion, t = _inputs(generator, frames=6)
    videos = [sources.open_source(str(path)).render(z, z_motion, t)
              for path in (run_dir, export_dir / "tiny.keras",
                           export_dir / "tiny", export_dir / "tiny" / "1")]
    for video in videos[1:]:
        np.testing.assert_array_equal(video, videos[0])


def test_predict_request_and_response_follow_the_rest_api():
    body = rest_client.predict_request(
        {"seed": np.array([1, 2]), "num_frames": np.int32(4)},
        "generate_from_seed")
    assert body == {"signature_name": "generate_from_seed",
                    "inputs": {"seed": [1, 2], "num_frames": 4}}
    video = [[[[[0, 1, 255]]]]]
    # One output: TF Serving drops its name; several: a dict.
    for response in ({"outputs": video}, {"outputs": {"video": video}}):
        parsed = rest_client.parse_predict_response(response)
        assert parsed.dtype == np.uint8 and parsed.shape == (1, 1, 1, 1, 3)
    with pytest.raises(rest_client.ServingError, match="at most 3"):
        rest_client.parse_predict_response(
            {"error": "too many videos: at most 3 per request"})
    assert rest_client.predict_url("http://h:8501/", "m", 2) == \
        "http://h:8501/v1/models/m/versions/2:predict"


def _decode(path):
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24")
                         for f in container.decode(video=0)])


def test_query_against_a_rest_server(export_dir, generator, tmp_path):
    server = subprocess.Popen(
        python_command(ROOT / "tests" / "tf_serving_stand_in.py",
                       export_dir / "tiny", "tiny"),
        stdout=subprocess.PIPE, text=True, env=quiet_env())
    try:
        address = f"http://127.0.0.1:{server.stdout.readline().strip()}"
        result = run_tool("query", f"--server={address}",
                      "--model_name=tiny", "--seeds=3,9", "--num_frames=5",
                      f"--output_dir={tmp_path}")
        assert result.returncode == 0, result.stderr[-3000:]
        assert sorted(os.listdir(tmp_path)) == ["seed_000003.mp4",
                                                "seed_000009.mp4"]
        # The served frames, as bin/query received them, against the same
        # computation in this process: the server is another process, whose
        # float32 sums may round a value at a .5 boundary of the uint8
        # conversion the other way (seen once in four full-suite runs), so
        # frames may differ by one level, on a few values.
        # The same batch bin/query asked for: a batch of one may differ by a
        # level in a few values, and H.264 then encodes the frames
        # differently.
        served_frames = rest_client.predict(
            address, "tiny", {"seed": [3, 9], "num_frames": 5},
            "generate_from_seed")[1]
        here = signatures.GeneratorSignatures(generator)
        expected = here.generate_from_seed(
            np.array([9], np.int64), np.int32(5))["video"].numpy()[0]
        assert served_frames.shape == expected.shape
        difference = np.abs(served_frames.astype(int) - expected)
        assert difference.max() <= 1 and np.mean(difference > 0) < 1e-3
        # bin/query's MP4 is the served frames encoded as H.264 (lossy):
        # it decodes exactly as the same frames encoded here.
        video_writer.write_mp4(tmp_path / "expected.mp4", served_frames, 8)
        served, local = (_decode(tmp_path / name) for name in
                         ("seed_000009.mp4", "expected.mp4"))
        np.testing.assert_array_equal(served, local)

        over = run_tool("query", f"--server={address}",
                    "--model_name=tiny", "--seeds=1,2,3,4",
                    f"--output_dir={tmp_path / 'over'}")
        assert over.returncode != 0
        assert "too many videos: at most 3 per request" in over.stderr
        missing = run_tool("query", f"--server={address}",
                       "--model_name=other", f"--output_dir={tmp_path}")
        assert missing.returncode != 0 and "Servable not found" in \
            missing.stderr
    finally:
        server.kill()
        server.wait()
