"""bin/generate as users run it: files, long videos in bounded memory,
timestamps, and errors."""

import os
import re

import av
import keras
import numpy as np
import pytest
from PIL import Image

import digan_tf
from digan_tf.generation import rendering
from digan_tf.generation import sources
from tests import testing
from tests.subprocesses import run_tool

pytestmark = pytest.mark.slow  # subprocesses and real runs



def _generate(*args):
    return run_tool("generate", *args)


@pytest.fixture(scope="module")
def keras_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "g.keras"
    keras.utils.set_random_seed(1)
    digan_tf.Generator(**testing.TINY_GENERATOR).save(path)
    return path


def _frames(path):
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def test_writes_mp4_and_gif_per_video_and_grids(keras_file, tmp_path):
    result = _generate(f"--model={keras_file}", f"--output_dir={tmp_path}",
                       "--num_videos=3", "--num_frames=5")
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(os.listdir(tmp_path)) == sorted(
        f"{n}.{e}" for n in ["video_000", "video_001", "video_002", "grid",
                             "content_motion"] for e in ["gif", "mp4"])
    frames = _frames(tmp_path / "video_001.mp4")
    assert len(frames) == 5 and frames[0].shape == (64, 64, 3)
    with Image.open(tmp_path / "grid.gif") as gif:
        assert gif.n_frames == 5 and gif.size == (128, 128)
    with Image.open(tmp_path / "content_motion.gif") as gif:
        assert gif.n_frames == 5 and gif.size == (192, 192)  # 3 x 3


def test_content_motion_grid_rows_hold_the_content_codes(keras_file,
                                                        tmp_path):
    source = sources.open_source(str(keras_file))
    rendering.generate_videos(
        source, tmp_path, num_videos=2, num_frames=3, fps=4, seed=7)

    def last_frame(name):
        with Image.open(tmp_path / f"{name}.gif") as gif:
            gif.seek(2)
            return np.asarray(gif.convert("RGB")).astype(int)

    tiles = last_frame("content_motion")
    videos = [last_frame("video_000"), last_frame("video_001")]
    # Tile (i, i) is video i (GIF palettes differ: compare loosely); row i
    # has the content code of video i, and content changes frames far more.
    for i, video in enumerate(videos):
        tile = tiles[64 * i:64 * (i + 1), 64 * i:64 * (i + 1)]
        assert np.abs(tile - video).mean() < 10
        assert np.abs(tile - videos[1 - i]).mean() > 40


def test_long_videos_stream_in_bounded_memory(tmp_path):
    small = tmp_path / "small.keras"
    digan_tf.Generator(resolution=32, fmaps=0.015625, channel_max=8,
                       z_dim=8, w_dim=8, motion_dim=8,
                       num_frequencies=4).save(small)
    peaks = {}
    for frames in (200, 2000):
        result = _generate(f"--model={small}",
                           f"--output_dir={tmp_path / str(frames)}",
                           "--num_videos=1", f"--num_frames={frames}",
                           "--chunk_frames=50", "--nogrid")
        assert result.returncode == 0, result.stderr[-3000:]
        peaks[frames] = float(re.search(r"peak memory (\d+) MB",
                                        result.stdout).group(1))
    assert len(_frames(tmp_path / "2000" / "video_000.mp4")) == 2000
    with Image.open(tmp_path / "2000" / "video_000.gif") as gif:
        assert gif.n_frames == 2000
    # Holding the video would take 1800 x 32 x 32 x 3 bytes = 5.5 MB more
    # as uint8 (22 MB as float32) than the 200-frame run.
    assert peaks[2000] - peaks[200] < 4, peaks


def test_smaller_time_steps_interpolate_and_t_past_1_extrapolates(
        keras_file):
    source = sources.open_source(str(keras_file))
    z, z_motion = testing.latents(1, source)
    step = source.time_step
    normal = source.render(z, z_motion, step * np.arange(8)[None])
    fine = source.render(z, z_motion, step / 2 * np.arange(16)[None])
    # Every second frame at half the spacing is a frame at full spacing,
    # including frames past t = 1 (frames 8-15 of the clip length 16).
    assert np.abs(fine[:, ::2].astype(int) - normal).max() <= 1
    assert np.abs(fine[:, 1::2].astype(int) - normal).max() > 0


@pytest.mark.parametrize("flags, message", [
    (["--model=/nonexistent.keras"], "no such file or directory"),
    (["--model=setup.cfg"], "is a file but not .keras"),
    (["--model=tests"], "is none of: a .keras file"),
    (["--time_step=0"], "--time_step must not be 0"),
    (["--checkpoint=ckpt-1"], "--checkpoint needs --model=RUN_DIR"),
    (["--labels=1"], "--labels: this generator is unconditional"),
    (["--labels=a"], "--labels must be integers"),
    (["--num_frames=0"], "num_frames"),
])
def test_errors_name_the_flag(tmp_path, flags, message):
    result = _generate(f"--output_dir={tmp_path / 'out'}", "--resolution=32",
                       "--fmaps=0.0625", *flags)
    assert result.returncode != 0
    assert message in result.stderr
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")
