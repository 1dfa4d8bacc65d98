"""The tf.data pipelines: pair statistics, flips, determinism, sharding.

The dataset is made of frame folders whose frames encode their own index
(left half gray level 8 * i + 4, right half black, a corner mark per
video), so every decoded frame says
where it came from and whether it was flipped.
"""

import numpy as np
import pytest
import tensorflow as tf

from digan_tf.data import pipelines
from digan_tf.data import prepare
from tests import video_fixtures

CLIP = 16
FRAMES_PER_VIDEO = 32


def _frame(index, video):
    frame = np.zeros((32, 32, 3), np.uint8)
    frame[:, :16] = 8 * index + 4
    frame[:4, 28:] = 40 * video + 20  # outside the columns read below
    return frame


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("indexed")
    for video in range(6):
        video_fixtures.write_frame_folder(
            str(root / "frames" / f"video_{video}"),
            [_frame(i, video) for i in range(FRAMES_PER_VIDEO)])
    output = str(root / "prepared")
    prepare.prepare(str(root / "frames"), output, resolution=32,
                    videos_per_shard=2)
    return output


def _decode_index(frames):
    """(frame index, flipped) of frames [..., 32, 32, 3] in [-1, 1]."""
    values = (np.asarray(frames) + 1.0) * 127.5
    left, right = values[..., 4:12, :].mean((-1, -2, -3)), values[
        ..., 20:28, :].mean((-1, -2, -3))
    flipped = right > left
    index = np.rint((np.maximum(left, right) - 4) / 8).astype(int) % CLIP
    return index, flipped


def _pairs(data_dir, batches, seed=0, **kwargs):
    dataset = pipelines.frame_pair_dataset(data_dir, 64, CLIP, seed=seed,
                                           **kwargs)
    return [tuple(t.numpy() for t in batch)
            for batch in dataset.take(batches)]


def test_pair_order_dt_and_beta_statistics(data_dir):
    firsts, seconds, dts = [], [], []
    for frame_1, frame_2, dt in _pairs(data_dir, 40):
        first, _ = _decode_index(frame_1)
        second, _ = _decode_index(frame_2)
        firsts.append(first)
        seconds.append(second)
        dts.append(dt)
    first, second, dt = map(np.concatenate, (firsts, seconds, dts))
    assert np.all(first <= second)
    np.testing.assert_allclose(dt, (second - first) / (CLIP - 1), atol=1e-6)
    # Expected statistics of sorted floor(Beta(2,1) N), floor(Beta(1,2) N).
    rng = np.random.default_rng(0)
    a = np.floor(rng.beta(2, 1, 200000) * CLIP)
    b = np.floor(rng.beta(1, 2, 200000) * CLIP)
    expected_first, expected_second = np.minimum(a, b), np.maximum(a, b)
    assert abs(first.mean() - expected_first.mean()) < 0.35
    assert abs(second.mean() - expected_second.mean()) < 0.35
    assert abs(dt.mean() - ((expected_second - expected_first).mean()
                            / (CLIP - 1))) < 0.03


def test_both_frames_share_one_flip(data_dir):
    flips = []
    for frame_1, frame_2, _ in _pairs(data_dir, 10):
        flip_1, flip_2 = _decode_index(frame_1)[1], _decode_index(frame_2)[1]
        np.testing.assert_array_equal(flip_1, flip_2)
        flips.append(flip_1)
    assert 0.35 < np.concatenate(flips).mean() < 0.65


def test_values_shapes_and_labels(tmp_path, data_dir):
    frame_1, frame_2, dt = _pairs(data_dir, 1)[0]
    assert frame_1.shape == frame_2.shape == (64, 32, 32, 3)
    assert frame_1.dtype == np.float32 and dt.shape == (64,)
    assert frame_1.min() >= -1.0 and frame_1.max() <= 1.0
    with pytest.raises(ValueError, match="no class labels, which a conditional"):
        pipelines.frame_pair_dataset(data_dir, 4, conditional=True)


def test_a_seed_makes_the_stream_deterministic(data_dir):
    first = _pairs(data_dir, 2, seed=7)
    second = _pairs(data_dir, 2, seed=7)
    other = _pairs(data_dir, 2, seed=8)
    for a, b in zip(first, second):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    assert not np.array_equal(first[0][2], other[0][2])


def _clips_per_pipeline(data_dir, count):
    seen = []
    for pipeline in range(count):
        context = tf.distribute.InputContext(count, pipeline, count)
        dataset = pipelines._video_dataset(data_dir, CLIP, seed=0,
                                           input_context=context,
                                           shuffle=False)
        seen.append([tuple(clip.numpy().tolist()) for clip, _ in dataset])
    return seen


def _assert_a_partition(seen, total):
    """Every clip is read by exactly one pipeline."""
    union = [clip for clips in seen for clip in clips]
    assert len(union) == len(set(union)) == total


def test_input_pipelines_read_disjoint_shards(data_dir):
    # 3 shards of 2 videos of 2 clips: one shard per pipeline.
    seen = _clips_per_pipeline(data_dir, 3)
    assert all(len(s) == 4 for s in seen)
    _assert_a_partition(seen, 12)
    batch = pipelines.frame_pair_dataset(
        data_dir, 12, CLIP, seed=0,
        input_context=tf.distribute.InputContext(3, 0, 3))
    assert next(iter(batch))[0].shape[0] == 4  # per-replica batch


def test_more_pipelines_than_shards_split_the_records(data_dir):
    # 3 shards, 4 pipelines: each reads every 4th video record.
    seen = _clips_per_pipeline(data_dir, 4)
    assert sorted(len(s) for s in seen) == [2, 2, 4, 4]
    _assert_a_partition(seen, 12)


def test_clips_are_consecutive_frames(data_dir):
    clips, labels = next(iter(pipelines.clip_dataset(data_dir, CLIP,
                                                     batch_size=4)))
    assert clips.shape == (4, CLIP, 32, 32, 3) and clips.dtype == tf.uint8
    index, _ = _decode_index(clips.numpy().astype(np.float32) / 127.5 - 1)
    np.testing.assert_array_equal(index, np.tile(np.arange(CLIP), (4, 1)))
    assert labels.numpy().tolist() == [-1] * 4
