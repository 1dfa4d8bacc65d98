"""The clips each metric compares, drawn as the papers draw them: real
clips uniformly over videos at a random offset (short videos left out and
counted), generated clips from t = 0, a folder's videos from their first
frame; `stride` keeps every stride-th frame."""

import collections

import numpy as np
import pytest
from PIL import Image

import digan_tf
from digan_tf.data import prepare
from digan_tf.evaluation import clips
from digan_tf.generation import latents
from digan_tf.generation import video_writer
from tests import testing

LENGTHS = (20, 30, 10, 24)  # frames per video; the 10-frame one is short


def _write_frames(folder, video, length):
    """Frame t of video v: red = 8 t, green = 60 v (survive JPEG)."""
    folder.mkdir(parents=True)
    for t in range(length):
        frame = np.zeros((32, 32, 3), np.uint8)
        frame[..., 0], frame[..., 1] = 8 * t, 60 * video
        Image.fromarray(frame).save(folder / f"{t:03d}.png")


@pytest.fixture(scope="module")
def coded(tmp_path_factory):
    """A frame folder per video and the dataset prepared from them."""
    root = tmp_path_factory.mktemp("coded")
    for video, length in enumerate(LENGTHS):
        _write_frames(root / "frames" / f"v{video}", video, length)
    prepare.prepare(str(root / "frames"), str(root / "data"), resolution=32,
                    min_frames=1)
    return root


def _decode_codes(batch):
    """(video, frame indices) of each clip from its pixel codes."""
    red = batch[..., 0].mean(axis=(2, 3)) / 8
    green = batch[..., 1].mean(axis=(1, 2, 3)) / 60
    return np.rint(green).astype(int), np.rint(red).astype(int)


@pytest.mark.parametrize("span, stride", [(16, 1), (24, 4)])
def test_real_clips_are_uniform_over_long_videos_at_random_offsets(
        coded, span, stride):
    info, batches = clips.real_clips(str(coded / "data"), span, stride,
                                     num_clips=300, batch_size=64, seed=3)
    eligible = [v for v, n in enumerate(LENGTHS) if n >= span]
    assert (info.videos, info.eligible, info.left_out, info.clips) == (
        4, len(eligible), 4 - len(eligible), 300)
    batches = list(batches)
    assert sum(len(b) for b in batches) == 300
    assert batches[0].shape[1:] == (span // stride, 32, 32, 3)
    videos, offsets = collections.Counter(), collections.defaultdict(set)
    for batch in batches:
        for video, frames in zip(*_decode_codes(batch)):
            # consecutive frames of one video, every stride-th
            np.testing.assert_array_equal(
                np.diff(frames), np.full(len(frames) - 1, stride))
            assert 0 <= frames[0] <= LENGTHS[video] - span
            videos[video] += 1
            offsets[video].add(frames[0])
    assert set(videos) == set(eligible)  # short videos never appear
    for video in eligible:  # uniform over videos: 300 / |eligible| each
        assert abs(videos[video] - 300 / len(eligible)) < 40, videos
        # offsets cover the range (up to 15 choices, 100 draws)
        assert len(offsets[video]) >= min(LENGTHS[video] - span + 1, 5)
    again = np.concatenate(list(clips.real_clips(
        str(coded / "data"), span, stride, 300, 64, seed=3)[1]))
    np.testing.assert_array_equal(np.concatenate(batches), again)


def test_no_video_long_enough_is_an_error_that_names_the_longest(coded):
    with pytest.raises(ValueError, match="no video of at least 31 frames "
                       r"\(the longest has 30\)"):
        clips.real_clips(str(coded / "data"), 31, 1, 2, 2, seed=0)


def test_folder_clips_start_at_the_first_frame_and_count_short_videos(
        coded):
    info, batches = clips.folder_clips(str(coded / "frames"), 16, 2,
                                       num_clips=3, resolution=32,
                                       batch_size=2)
    batch = np.concatenate(list(batches))
    videos, frames = _decode_codes(batch)
    assert videos.tolist() == [0, 1, 3]  # name order, v2 is short
    np.testing.assert_array_equal(frames, np.tile(np.arange(0, 16, 2),
                                                  (3, 1)))
    assert (info.videos, info.eligible, info.left_out) == (4, 3, 1)
    with pytest.raises(ValueError, match=r"has 3 videos of at least 16 "
                       r"frames \(1 shorter, 4 in all\); `num_videos`=4"):
        clips.folder_clips(str(coded / "frames"), 16, 1, 4, 32, 2)


def test_generated_clips_run_from_t0_at_stride_times_the_step():
    generator = digan_tf.Generator(**testing.TINY_GENERATOR)
    info, batches = clips.generated_clips(generator, 16, 4, num_clips=3,
                                          time_step=0.05, batch_size=2,
                                          seed=5)
    got = np.concatenate(list(batches))
    z, z_motion = latents.sample_latents(generator, 3, 5)
    t = np.float32(0.05) * 4 * np.arange(4, dtype=np.float32)
    expected = video_writer.to_uint8(generator(
        z, z_motion, np.tile(t, (3, 1))).numpy())
    assert got.shape == (3, 4, 64, 64, 3)
    assert np.abs(got.astype(int) - expected).max() <= 1
    assert info.sampling == "latent seeds, from t = 0"
