"""FVD/KVD end to end with the fixed-random-weight I3D (`*_randinit`):
the ranking it gives, the real-feature cache, bin/evaluate, and the
metrics during training."""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

import digan_tf
from digan_tf.data import demo_dataset
from digan_tf.evaluation import clips
from digan_tf.evaluation import distances
from digan_tf.evaluation import i3d_weights
from digan_tf.evaluation import protocol
from digan_tf.generation import sources
from digan_tf.generation import video_writer
from digan_tf.training import train_config
from digan_tf.training import trainer
from digan_tf.utils.atomic_files import save_model
from tests import testing
from tests import video_fixtures
from tests.subprocesses import run_tool

RANDINIT = "fvd16_randinit,kvd16_randinit"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """16 moving-shape videos of 32 frames at 32x32: 32 clips of 16."""
    path = str(tmp_path_factory.mktemp("demo"))
    demo_dataset.write_demo_dataset(path, resolution=32, clip_length=16,
                                    num_videos=16, seed=0)
    return path


@pytest.fixture(scope="module")
def generator():
    return digan_tf.Generator(**testing.TINY_GENERATOR)


@pytest.mark.slow
def test_randinit_metric_values_are_the_distances_of_the_clips_features(
        data_dir, generator):
    """The evaluator's FVD and KVD are the distances between the features
    of the real clips and of videos rendered from latent seed `seed + 1`,
    recomputed here from the clips; other real clips score far below
    uniform noise in both. (That the extractor is I3D is proved against
    the Flax reference in test_i3d_reference.)"""
    evaluator = protocol.Evaluator(data_dir, RANDINIT, num_videos=6,
                                   batch_size=3, seed=4)
    measured = evaluator(generator, truncation_psi=0.5)
    _, real = evaluator.real_features(randinit=True, span=16, stride=1)
    embedder = evaluator.embedder(randinit=True)
    _, batches = clips.generated_clips(generator, 16, 1, 6,
                                       generator.time_step, 3, seed=5,
                                       truncation_psi=0.5)
    generated = embedder.embed(batches, 6, "generated")
    assert measured["fvd16_randinit"] == [pytest.approx(
        distances.frechet_distance(generated, real), rel=1e-6)]
    assert measured["kvd16_randinit"] == [pytest.approx(
        distances.kernel_distance(generated, real), rel=1e-6)]
    _, batches = clips.real_clips(data_dir, 16, 1, 6, 3, seed=1)
    other_real = embedder.embed(batches, 6, "real")
    noise = embedder.embed(np.split(np.random.default_rng(0).integers(
        0, 256, (6, 16, 32, 32, 3), dtype=np.uint8), 2), 6, "noise")
    assert 0 < 2 * distances.frechet_distance(other_real, real) < (
        distances.frechet_distance(noise, real))
    assert 2 * distances.kernel_distance(other_real, real) < (
        distances.kernel_distance(noise, real))


@pytest.mark.slow
def test_fvd128_and_kvd128_compare_128_frame_clips(generator, tmp_path):
    """The long-video metrics embed whole 128-frame clips (real ones cut
    from 128-frame videos, generated ones of 128 timestamps) and are the
    distances of those features (recorded as the embedder returns them)."""
    data = str(tmp_path / "long")
    demo_dataset.write_demo_dataset(data, resolution=32, clip_length=64,
                                    num_videos=2, seed=0)
    evaluator = protocol.Evaluator(data, "fvd128_randinit,kvd128_randinit",
                                   num_videos=2, batch_size=8, seed=4)
    embedder = evaluator.embedder(randinit=True)
    embed, seen = embedder.embed, {}

    def recording_embed(batches, count, description):
        batches = list(batches)
        features = embed(iter(batches), count, description)
        seen[description.split()[1]] = ([b.shape for b in batches],
                                        features)
        return features

    embedder.embed = recording_embed
    measured = evaluator(generator)
    (real_shapes, real), (fake_shapes, fake) = seen["real"], seen["generated"]
    # batch_size counts 16-frame clips: one 128-frame clip per batch.
    assert real_shapes == [(1, 128, 32, 32, 3)] * 2
    assert fake_shapes == [(1, 128, 64, 64, 3)] * 2
    assert measured["fvd128_randinit"] == [pytest.approx(
        distances.frechet_distance(fake, real), rel=1e-6)]
    assert measured["kvd128_randinit"] == [pytest.approx(
        distances.kernel_distance(fake, real), rel=1e-6)]


def test_real_features_are_cached_per_dataset_clips_seed_and_weights(
        data_dir, tmp_path):
    cache = tmp_path / "cache"
    dataset = tmp_path / "demo"
    shutil.copytree(data_dir, dataset)

    def features(span=16, stride=1, num_videos=2, seed=0, randinit=True):
        evaluator = protocol.Evaluator(str(dataset), "fvd16_randinit",
                                       num_videos=num_videos, seed=seed,
                                       cache_dir=str(cache))
        return evaluator.real_features(randinit, span, stride)[1]

    first = features()
    (path,) = cache.iterdir()
    assert path.name.startswith("demo-16f-s1-2-randinit-")
    np.testing.assert_array_equal(np.load(path), first)
    # A new evaluator reads the file (proved by a marker written into it).
    marker = np.full_like(first, 7.0)
    np.save(path, marker)
    np.testing.assert_array_equal(features(), marker)
    # Every field of the key makes a file of its own: clip span and
    # stride, clip count, seed, weights, and the data (prepared again at
    # the same path with the same names and counts).
    variants = [dict(span=32, stride=2), dict(num_videos=3), dict(seed=1)]
    if i3d_weights.packaged_path():
        variants.append(dict(randinit=False))
    for count, variant in enumerate(variants, start=2):
        assert not np.array_equal(features(**variant), marker), variant
        assert len(list(cache.iterdir())) == count, variant
    shutil.rmtree(dataset)
    demo_dataset.write_demo_dataset(str(dataset), resolution=32,
                                    clip_length=16, num_videos=16, seed=1)
    assert not np.array_equal(features(), marker)
    assert len(list(cache.iterdir())) == len(variants) + 2
    assert not [p for p in cache.iterdir() if ".tmp-" in p.name]


def _evaluate(tmp_path, *flags):
    return run_tool("evaluate", f"--cache_dir={tmp_path / 'cache'}", *flags)


@pytest.mark.slow
def test_bin_evaluate_prints_a_table_and_writes_json(data_dir, generator,
                                                     tmp_path):
    model = str(tmp_path / "g.keras")
    save_model(generator, model)
    result = _evaluate(tmp_path, f"--model={model}",
                       f"--data_dir={data_dir}", f"--metrics={RANDINIT}",
                       "--num_videos=3", "--repeats=2", "--batch_size=3")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "g-metrics.json").read_text())
    assert report["protocol"]["num_videos"] == 3
    assert report["flags"]["time_step"] == pytest.approx(1 / 15)
    protocol_of = report["protocol"]["metrics"]["fvd16_randinit"]
    assert protocol_of["real"]["source"] == os.path.abspath(data_dir)
    assert (protocol_of["real"]["videos"], protocol_of["real"]["left_out"],
            protocol_of["real"]["clips"]) == (16, 0, 3)
    assert protocol_of["generated"]["sampling"] == "latent seeds, from t = 0"
    assert len(report["protocol"]["i3d"]["randinit_digest"]) == 40
    for name in ("fvd16_randinit", "kvd16_randinit"):
        values = report["results"][name]
        assert len(values) == 2 and values[0] != values[1]
        assert all(np.isfinite(values))
        mean, std = np.mean(values), np.std(values)
        assert report["summary"][name] == pytest.approx(
            {"mean": mean, "std": std})
        assert any(line.split()[:3] == [name, f"{mean:.3f}", f"{std:.3f}"]
                   for line in result.stdout.splitlines())
    assert report["results"]["fvd16_randinit"][0] > 0
    assert len(list((tmp_path / "cache").iterdir())) == 1


@pytest.mark.slow
def test_bin_evaluate_scores_a_folder_of_another_models_videos(
        data_dir, tmp_path):
    """--videos: MP4 files (FFmpeg) from their first frame, the short one
    left out and counted; the FVD is that of those decoded clips against
    the real draw."""
    folder = tmp_path / "samples"
    folder.mkdir()
    rng = np.random.default_rng(4)
    for index, length in enumerate((20, 8, 16, 16)):
        video_writer.write_mp4(folder / f"sample_{index}.mp4", rng.integers(
            0, 256, (length, 32, 32, 3), dtype=np.uint8), fps=8)
    result = _evaluate(tmp_path, f"--videos={folder}",
                       f"--data_dir={data_dir}",
                       "--metrics=fvd16_randinit", "--num_videos=3")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "samples-metrics.json").read_text())
    generated = report["protocol"]["metrics"]["fvd16_randinit"]["generated"]
    assert (generated["source"], generated["videos"], generated["eligible"],
            generated["left_out"]) == (str(folder), 4, 3, 1)
    evaluator = protocol.Evaluator(data_dir, "fvd16_randinit", num_videos=3)
    _, real = evaluator.real_features(randinit=True, span=16, stride=1)
    decoded = [video_fixtures.decode(str(folder / f"sample_{i}.mp4"),
                                     limit=16) for i in (0, 2, 3)]
    fake = evaluator.embedder(True).embed([np.stack(decoded)], 3, "fake")
    assert report["results"]["fvd16_randinit"][0] == pytest.approx(
        distances.frechet_distance(fake, real), rel=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("flag, message", [
    ("--metrics=fvd128_randinit", "--metrics=fvd128_randinit needs videos "
     "of at least 128 frames; --data_dir '{data_dir}' has none (the longest "
     "has 32)"),
    ("--videos={tmp_path}", "Give exactly one of --model and --videos"),
    ("--i3d_weights={tmp_path}/i3d", "--i3d_weights: no such checkpoint or "
                                     "TF Hub module directory"),
])
def test_bin_evaluate_bad_flags_stop_before_any_work(data_dir, tmp_path,
                                                     flag, message):
    flag = flag.format(tmp_path=tmp_path)
    result = _evaluate(tmp_path, f"--model={tmp_path}/g.keras",
                       f"--data_dir={data_dir}", "--metrics=fvd16_randinit",
                       flag)
    assert result.returncode != 0
    assert message.format(data_dir=data_dir) in result.stderr
    assert not (tmp_path / "cache").exists()


def test_config_checks_metric_flags(monkeypatch):
    base = dict(data_dir="demo", run_dir="run")
    monkeypatch.setattr(train_config, "packaged_path", lambda: None)
    with pytest.raises(ValueError, match="`metrics`=kvd128 needs the "
                       "pretrained I3D"):
        train_config.TrainConfig(**base, metrics="kvd128")
    with pytest.raises(ValueError, match="`metrics`: unknown metric"):
        train_config.TrainConfig(**base, metrics="fvd")
    with pytest.raises(ValueError, match="`metrics_every_kimg` must be > 0"):
        train_config.TrainConfig(**base, metrics_every_kimg=0.0)
    assert train_config.TrainConfig(**base, metrics="fvd128", i3d_weights="i3d")


def _scalars(directory, tag):
    from tensorboard.backend.event_processing import event_accumulator

    accumulator = event_accumulator.EventAccumulator(
        str(directory), size_guidance={"tensors": 0})
    accumulator.Reload()
    return [(e.step, float(tf.make_ndarray(e.tensor_proto)))
            for e in accumulator.Tensors(tag)]


@pytest.mark.slow
def test_training_measures_metrics_every_k_kimg(tmp_path):
    """Batch 4, a measurement every 0.004 kimg: after steps 1 and 2, in
    metrics.jsonl and TensorBoard; real features computed once. The run
    dir then loads as bin/evaluate's --model: its EMA generator."""
    config = train_config.TrainConfig(
        data_dir="demo", run_dir=str(tmp_path / "run"), resolution=32,
        fmaps=0.03125, channel_max=16, batch_size=4, clip_length=16,
        demo_videos=4, num_samples=2, max_steps=2, run_eagerly=True,
        metrics="fvd16_randinit", metrics_every_kimg=0.004,
        metrics_videos=2)
    model = trainer.train(config)
    run = tmp_path / "run"
    lines = [json.loads(line) for line in
             (run / "metrics.jsonl").read_text().splitlines()]
    assert [(line["step"], line["kimg"]) for line in lines] == [
        (1, 0.004), (2, 0.008)]
    logged = _scalars(run / "tensorboard", "Metrics/fvd16_randinit")
    assert [step for step, _ in logged] == [1, 2]
    np.testing.assert_allclose([value for _, value in logged],
                               [line["fvd16_randinit"] for line in lines],
                               rtol=1e-6)
    assert len(list((run / "feature_cache").iterdir())) == 1
    generator = sources.load_generator(str(run))
    assert generator.clip_length == 16
    for loaded, trained in zip(generator.weights,
                               model.ema_generator.weights, strict=True):
        np.testing.assert_array_equal(loaded.numpy(), trained.numpy())
