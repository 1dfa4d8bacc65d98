"""bin/export and bin/query as users run them: TF Serving's layout, the
SavedModel loaded by processes that import only TensorFlow (the TF2 loader
and the TF1 session loader TF Serving uses), the .keras file, in-graph
request limits, and a REST round trip."""

import json
import os
import pathlib
import shutil
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
from digan_tf.layers.coordinate_view import CoordinateView
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
    kit = ["1", "batching_parameters.txt", "models.config"]
    assert sorted(os.listdir(export_dir / "tiny")) == kit
    version = export_dir / "tiny" / "1"
    assert (version / "saved_model.pb").is_file()
    card = json.loads((version / export.CARD_PATH).read_text())
    assert card["resolution"] == 32 and card["clip_length"] == 8
    assert card["time_step"] == pytest.approx(1 / 7)
    assert card["num_classes"] == 0 and card["class_names"] == []
    assert card["limits"]["max_batch"] == 3
    assert card["source"].endswith("ckpt-2")
    assert card["signatures"] == ["generate", "generate_from_seed",
                                  "generate_from_seed_full",
                                  "generate_from_style", "serving_default"]
    assert (card["resolution_scale"], card["field_of_view"]) == (1, 1)

    again = run_tool("export", f"--run_dir={run_dir}",
                 "--name=tiny", f"--export_dir={export_dir}", "--version=1")
    assert again.returncode != 0
    assert "--version=1" in again.stderr and "never overwritten" in again.stderr
    assert sorted(os.listdir(export_dir / "tiny")) == kit


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
    # A new name's first default version (1) is the export_dir fixture's.
    export.export_generator(generator, tmp_path, "g", version=7)
    assert export.export_generator(generator, tmp_path, "g").saved_model \
        == str(tmp_path / "g" / "8")
    assert export.versions(tmp_path / "g") == [7, 8]


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


# Runs in a process that imports TensorFlow only: every documented request
# with only the inputs it needs, through the TF1 session loader on the
# SignatureDef tensor names (TF Serving's classic path; no defaults are
# filled in), through tf.saved_model.load's signatures, and through its
# callable attributes.
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
        "seeds_full": ("generate_from_seed_full", {
            "seed": requests["seed"], "num_frames": np.int32(12),
            "start_time": np.float32(0.5), "time_step": np.float32(0.25),
            "truncation_psi": np.float32([0.7])}),
        "styles": ("generate_from_style", {
            k: requests[k] for k in ("w", "z_motion", "timestamps")}),
    }
    results = {}
    with tf.compat.v1.Session(graph=tf.Graph()) as session:
        meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], path)
        for name, (key, given) in calls.items():
            signature = meta.signature_def[key]
            assert not signature.defaults, key  # nothing left to fill in
            assert set(signature.inputs) == set(given), key
            feeds = {signature.inputs[alias].name: value
                     for alias, value in given.items()}
            results[f"session_{name}"] = session.run(
                signature.outputs["video"].name, feed_dict=feeds)
    loaded = tf.saved_model.load(path)
    for name, (key, given) in calls.items():
        results[f"loaded_{name}"] = loaded.signatures[key](
            **{k: tf.constant(v) for k, v in given.items()})["video"].numpy()
        results[f"attribute_{name}"] = getattr(loaded, key)(
            **given)["video"].numpy()
    np.savez(out_path, **results)
    print("digan_tf" in sys.modules, "keras" in sys.modules)
""")


def test_saved_model_in_a_tensorflow_only_process(export_dir, generator,
                                                   tmp_path):
    z, z_motion, t = _inputs(generator)
    seeds = np.array([3, 11], np.int64)
    w = generator.style(z).numpy()
    np.savez(tmp_path / "in.npz", z_content=z, z_motion=z_motion,
             timestamps=t, seed=seeds, w=w)
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
    full = here.generate_from_seed_full(
        seeds, np.int32(12), np.float32(0.5), np.float32(0.25),
        np.float32([0.7]))["video"].numpy()
    assert np.abs(full.astype(int) - from_seed).max() > 10  # other inputs
    for loader in ("session", "loaded", "attribute"):
        np.testing.assert_array_equal(out[f"{loader}_latents"], from_latents)
        np.testing.assert_array_equal(out[f"{loader}_seeds"], from_seed)
        np.testing.assert_array_equal(out[f"{loader}_seeds_full"], full)
        # A content code's style renders its video.
        np.testing.assert_array_equal(out[f"{loader}_styles"], from_latents)

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
                 "signature_def['generate']",
                 "signature_def['generate_from_seed']",
                 "signature_def['generate_from_seed_full']",
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
                 timestamps=tf.zeros([batch, frames]))
    video = function(z_content=tf.zeros([2, 512]), z_motion=tf.zeros([2, 512]),
                     timestamps=tf.zeros([2, 48]))["video"]
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
    full = loaded.signatures["generate_from_seed_full"]
    video = full(labels=tf.constant([2, 0], tf.int64), **call)["video"].numpy()
    z, z_motion = latents.latents_from_seeds(seeds, 16, 16)
    expected = video_writer.to_uint8(generator(
        z, z_motion, np.tile(np.float32([0, 0.5, 1]), (2, 1)),
        labels=np.array([2, 0]), truncation_psi=np.float32([0.7, 1.0])))
    assert np.abs(video.astype(int) - expected).max() <= 1
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"labels must be in \[0, 3\)"):
        full(labels=tf.constant([3, 0], tf.int64), **call)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="truncation_psi must hold 1 value or one per"):
        full(labels=tf.constant([1, 0], tf.int64),
             **dict(call, truncation_psi=tf.constant([0.5, 0.5, 0.5])))
    minimal = loaded.generate_from_seed(seed=seeds, num_frames=3,
                                        labels=tf.constant([2, 0], tf.int64))
    assert minimal["video"].shape == (2, 3, 64, 64, 3)


def test_all_generator_sources_render_the_same_video(
        run_dir, export_dir, generator):
    z, z_motion, t = _inputs(generator, frames=6)
    videos = [sources.open_source(str(path)).render(z, z_motion, t)
              for path in (run_dir, export_dir / "tiny.keras",
                           export_dir / "tiny", export_dir / "tiny" / "1")]
    for video in videos[1:]:
        np.testing.assert_array_equal(video, videos[0])


def test_an_xla_export_renders_the_same_videos(export_dir, generator,
                                              tmp_path):
    """Signatures compiled with XLA (`bin/export --jit_compile`) give the
    plain export's videos within one level of rounding, and the card says
    how they were compiled."""
    paths = export.export_generator(
        generator, str(tmp_path), "xla", jit_compile=True,
        limits=signatures.ServingLimits(3, 64, 3 * 40 * 32 * 32, 8))
    card = json.loads(open(os.path.join(paths.saved_model, export.CARD_PATH)
                           ).read())
    assert card["jit_compile"] is True
    xla = tf.saved_model.load(paths.saved_model)
    plain = tf.saved_model.load(str(export_dir / "tiny" / "1"))
    z, z_motion, t = _inputs(generator, frames=10)
    seeds = tf.constant([3, 4], tf.int64)
    for videos in (
            [m.signatures["serving_default"](
                z_content=tf.constant(z), z_motion=tf.constant(z_motion),
                timestamps=tf.constant(t))["video"].numpy().astype(int)
             for m in (xla, plain)],
            [m.generate_from_seed(seeds, np.int32(10))["video"].numpy(
                ).astype(int) for m in (xla, plain)]):
        difference = np.abs(videos[0] - videos[1])
        assert difference.max() <= 1 and (difference > 0).mean() < 1e-2
        assert videos[0].std() > 5  # not a blank video


def test_an_export_at_another_view_renders_it_and_says_so(
        run_dir, generator, tmp_path):
    result = run_tool("export", f"--run_dir={run_dir}", "--name=wide",
                      f"--export_dir={tmp_path}", "--resolution_scale=2",
                      "--field_of_view=1.5", "--max_pixels=100000")
    assert result.returncode == 0, result.stderr[-3000:]
    card = json.loads((tmp_path / "wide" / "1" / export.CARD_PATH
                       ).read_text())
    assert (card["resolution"], card["trained_resolution"]) == (96, 32)
    assert (card["resolution_scale"], card["field_of_view"]) == (2, 1.5)
    z, z_motion, t = _inputs(generator, batch=1, frames=3)
    served = sources.open_source(str(tmp_path / "wide"))
    assert served.resolution == 96
    video = served.render(z, z_motion, t)
    view = CoordinateView(2, 1.5)
    here = sources.from_generator(generator, view=view).render(
        z, z_motion, t)
    np.testing.assert_array_equal(video, here)
    # The limit counts the rendered pixels: 11 frames of 96 x 96 > 100000.
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="videos x frames x 96 x 96"):
        served.render(z, z_motion, np.zeros((1, 11), np.float32))
    with pytest.raises(ValueError, match="renders resolution_scale=2, "
                       "field_of_view=1.5; re-export"):
        sources.open_source(str(tmp_path / "wide"),
                            view=CoordinateView(resolution_scale=3))


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


def test_generate_cli_video_i_is_the_served_seed_plus_i(export_dir,
                                                       tmp_path):
    """bin/generate's video i is `generate_from_seed_full` of seed + i at
    --start_time and --time_step: its MP4 decodes exactly as those frames
    encoded here (H.264 is lossy, and deterministic)."""
    result = run_tool("generate", f"--model={export_dir / 'tiny'}",
                      f"--output_dir={tmp_path}", "--num_videos=2",
                      "--seed=5", "--num_frames=6", "--start_time=0.75",
                      "--time_step=0.25", "--nogrid", "--nogif")
    assert result.returncode == 0, result.stderr[-3000:]
    full = tf.saved_model.load(str(export_dir / "tiny" / "1")
                               ).signatures["generate_from_seed_full"]

    def encoded(seed, start_time):
        video = full(seed=tf.constant([seed], tf.int64),
                     num_frames=tf.constant(6), start_time=tf.constant(
                         start_time), time_step=tf.constant(0.25),
                     truncation_psi=tf.constant([1.0]))["video"].numpy()[0]
        path = tmp_path / f"expected_{seed}_{start_time}.mp4"
        video_writer.write_mp4(path, video, 8)  # bin/generate's default fps
        return _decode(path)

    for i, seed in enumerate((5, 6)):
        written = _decode(tmp_path / f"video_00{i}.mp4")
        np.testing.assert_array_equal(written, encoded(seed, 0.75))
        assert not np.array_equal(written, encoded(11 - seed, 0.75))
        assert not np.array_equal(written, encoded(seed, 0.0))


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
        assert "HTTP 404" in missing.stderr

        # The minimal REST request of the README, and the full one.
        minimal = rest_client.predict(
            address, "tiny", {"seed": [9], "num_frames": 5},
            "generate_from_seed")
        # (a batch of one may round a few values the other way)
        difference = np.abs(minimal[0].astype(int) - served_frames)
        assert difference.max() <= 1 and np.mean(difference > 0) < 1e-3
        full = run_tool("query", f"--server={address}", "--model_name=tiny",
                        "--seeds=9", "--num_frames=5", "--time_step=0.25",
                        "--truncation_psi=0.5",
                        f"--output_dir={tmp_path / 'full'}")
        assert full.returncode == 0, full.stderr[-2000:]
        lacking = run_tool("query", f"--server={address}",
                           "--model_name=tiny", "--truncation_psi=0.5",
                           f"--output_dir={tmp_path / 'lacking'}")
        assert lacking.returncode != 0 and "need --time_step" in \
            lacking.stderr
        metadata = run_tool("query", f"--server={address}",
                            "--model_name=tiny", "--metadata")
        assert metadata.returncode == 0, metadata.stderr[-2000:]
        lines = metadata.stdout.splitlines()
        for name in signatures.SIGNATURES:
            assert name in lines
        assert any(line.split() == ["input", "num_frames", "DT_INT32", "[]"]
                   for line in lines), lines
        assert any(line.split()[:3] == ["output", "video", "DT_UINT8"]
                   for line in lines)
        refused = run_tool("query", f"--server={address}",
                           "--model_name=tiny", "--seeds=1",
                           "--num_frames=100000",
                           f"--output_dir={tmp_path / 'refused'}")
        assert refused.returncode != 0
        assert "HTTP 400" in refused.stderr and \
            "too many frames: at most 64 per video" in refused.stderr
    finally:
        server.kill()
        server.wait()
    with pytest.raises(rest_client.ServingError, match="cannot reach"):
        rest_client.metadata(address, "tiny")


def _served(loaded, signature, inputs):
    return loaded.signatures[signature](
        **{k: tf.constant(v) for k, v in inputs.items()})["video"].numpy()


def test_tf_serving_kit_warmup_config_and_batching(export_dir, tmp_path):
    """Parsed with tensorflow-serving-api's own protos (a test-only
    dependency): the warm-up records are PredictionLogs that the model
    answers; the model config is a valid ModelServerConfig."""
    from google.protobuf import text_format
    from tensorflow_serving.apis import prediction_log_pb2
    from tensorflow_serving.config import model_server_config_pb2

    version = export_dir / "tiny" / "1"
    loaded = tf.saved_model.load(str(version))
    records = list(tf.data.TFRecordDataset(
        str(version / "assets.extra" / "tf_serving_warmup_requests")))
    seen = []
    for record in records:
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        request = log.predict_log.request
        assert request.model_spec.name == "tiny"
        inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        video = _served(loaded, request.model_spec.signature_name, inputs)
        assert video.shape == (1, 8, 32, 32, 3)  # frames_per_chunk frames
        seen.append(request.model_spec.signature_name)
    assert sorted(seen) == sorted(signatures.SIGNATURES)

    config = text_format.Parse(
        (export_dir / "tiny" / "models.config").read_text(),
        model_server_config_pb2.ModelServerConfig())
    (model,) = config.model_config_list.config
    assert (model.name, model.base_path) == ("tiny", "/models/tiny")
    assert dict(model.version_labels) == {"stable": 1, "canary": 1}
    assert list(model.model_version_policy.specific.versions) == [1]
    # (BatchingParameters is not in the tensorflow-serving-api wheel.)
    batching = (export_dir / "tiny" / "batching_parameters.txt").read_text()
    assert "max_batch_size { value: 3 }" in batching  # ServingLimits
    assert [line.split()[1] for line in batching.splitlines()
            if line.startswith("allowed_batch_sizes")] == ["1", "2", "3"]

    # A second version: canary is the new one, stable the previous.
    generator = digan_tf.Generator(**testing.TINY_GENERATOR)
    for _ in range(2):
        export.export_generator(generator, tmp_path, "two")
    config = text_format.Parse(
        (tmp_path / "two" / "models.config").read_text(),
        model_server_config_pb2.ModelServerConfig())
    labels = dict(config.model_config_list.config[0].version_labels)
    assert labels == {"stable": 1, "canary": 2}


# Hostile requests through the TF1 session path (TF Serving's), in a
# process of its own whose peak memory is measured around each request.
_HOSTILE = textwrap.dedent("""
    import json, resource, sys, time
    import numpy as np
    import tensorflow as tf

    path = sys.argv[1]
    nan = np.float32("nan")
    z = lambda b, n=512: np.zeros((b, n), np.float32)
    cases = {
        "huge frames": ("generate_from_seed", dict(
            seed=np.int64([1]), num_frames=np.int32(2 ** 31 - 1))),
        "zero frames": ("generate_from_seed", dict(
            seed=np.int64([1]), num_frames=np.int32(0))),
        "negative frames": ("generate_from_seed", dict(
            seed=np.int64([1]), num_frames=np.int32(-5))),
        "empty batch": ("generate_from_seed", dict(
            seed=np.zeros([0], np.int64), num_frames=np.int32(4))),
        "too many videos": ("generate_from_seed", dict(
            seed=np.arange(4, dtype=np.int64), num_frames=np.int32(4))),
        "rows disagree": ("serving_default", dict(
            z_content=z(2), z_motion=z(3), timestamps=np.zeros((2, 4),
                                                               np.float32))),
        "wrong latent size": ("serving_default", dict(
            z_content=z(1, 7), z_motion=z(1), timestamps=np.zeros(
                (1, 4), np.float32))),
        "wrong rank": ("serving_default", dict(
            z_content=z(1), z_motion=z(1), timestamps=np.zeros(
                (1, 4, 1), np.float32))),
        "nan latent": ("serving_default", dict(
            z_content=np.full((1, 512), nan), z_motion=z(1),
            timestamps=np.zeros((1, 4), np.float32))),
        "inf timestamp": ("serving_default", dict(
            z_content=z(1), z_motion=z(1), timestamps=np.float32(
                [[0, np.inf, 0.5, 1]]))),
        "nan time step": ("generate_from_seed_full", dict(
            seed=np.int64([1]), num_frames=np.int32(4),
            start_time=np.float32(0), time_step=nan,
            truncation_psi=np.float32([1]))),
    }
    good = ("generate_from_seed", dict(seed=np.int64([7]),
                                       num_frames=np.int32(6)))
    report = {}
    with tf.compat.v1.Session(graph=tf.Graph()) as session:
        meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], path)

        def call(key, inputs):
            signature = meta.signature_def[key]
            return session.run(signature.outputs["video"].name, feed_dict={
                signature.inputs[k].name: v for k, v in inputs.items()})

        before = call(*good)
        for name, (key, inputs) in cases.items():
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            start = time.monotonic()
            try:
                call(key, inputs)
                outcome = "accepted"
            except tf.errors.InvalidArgumentError as error:
                outcome = " ".join(error.message.split())[:3000]
            except ValueError as error:  # shapes: refused before Run
                outcome = str(error)[:300]
            report[name] = dict(
                outcome=outcome, seconds=time.monotonic() - start,
                grown_mb=(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                          - peak) / 1024)
        report["same after"] = bool((call(*good) == before).all())
    print(json.dumps(report))
""")


def test_hostile_requests_are_refused_fast_without_memory(export_dir):
    result = run(python_command("-c", _HOSTILE, export_dir / "tiny" / "1"))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report.pop("same after") is True
    expected = {
        "huge frames": "too many frames: at most 64 per video",
        "zero frames": "too few frames: at least 1",
        "negative frames": "too few frames: at least 1",
        "empty batch": "too few videos: at least 1",
        "too many videos": "too many videos: at most 3 per request",
        "rows disagree": "z_motion must have one row per z_content row",
        "wrong latent size": "z_content",
        "wrong rank": "timestamps",
        "nan latent": "z_content must be finite",
        "inf timestamp": "timestamps must be finite",
        "nan time step": "start_time and time_step must be finite",
    }
    for name, message in expected.items():
        outcome = report[name]
        assert message in outcome["outcome"], (name, outcome)
        assert outcome["seconds"] < 5, (name, outcome)
        assert outcome["grown_mb"] < 200, (name, outcome)


def _compile_cpp_loader(directory):
    """tests/cpp/load_saved_model.cc against the wheel's libtensorflow_cc."""
    compiler = shutil.which("g++")
    if compiler is None:
        pytest.skip("no C++ compiler on this machine (apt install g++)")
    library = pathlib.Path(tf.sysconfig.get_lib())
    binary = directory / "load_saved_model"
    subprocess.run(
        [compiler, "-std=c++17", "-O1", "-w",
         str(ROOT / "tests" / "cpp" / "load_saved_model.cc"), "-o",
         str(binary), *tf.sysconfig.get_compile_flags(), f"-L{library}",
         "-Wl,--no-as-needed", "-l:libtensorflow_cc.so.2",
         "-l:libtensorflow_framework.so.2", f"-Wl,-rpath,{library}"],
        check=True, capture_output=True, timeout=600)
    return binary


def test_tensorflows_cpp_loader_runs_the_minimal_request(export_dir,
                                                        generator, tmp_path):
    binary = _compile_cpp_loader(tmp_path)
    version = str(export_dir / "tiny" / "1")
    result = subprocess.run([str(binary), version, "3", "5"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    here = signatures.GeneratorSignatures(
        generator, signatures.ServingLimits(3, 64, 3 * 40 * 32 * 32, 8))
    video = here.generate_from_seed(np.array([3], np.int64),
                                    np.int32(5))["video"].numpy()
    assert result.stdout.split() == [
        "video", "[1,5,32,32,3]", "sum", str(int(video.astype(np.uint64).sum()))]
    huge = subprocess.run([str(binary), version, "3", str(2 ** 31 - 1)],
                          capture_output=True, text=True, timeout=300)
    assert huge.stdout.startswith("refused: INVALID_ARGUMENT")
    assert "too many frames: at most 64 per video" in huge.stdout
