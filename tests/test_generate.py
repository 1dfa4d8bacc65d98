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
from digan_tf.generation import latents
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

    def frame(name, index):
        with Image.open(tmp_path / f"{name}.gif") as gif:
            gif.seek(index)
            return np.asarray(gif.convert("RGB")).astype(int)

    # Tile (i, j) is content code i with motion code j. At t = 0 the motion
    # code has no effect (its phase shift is 0 * affine), so frame 0 of
    # every tile in row i is frame 0 of video i; at t = 2 / 15 the tile is
    # the render of (content i, motion j), computed here. GIF palettes
    # differ: compare loosely, against a far larger gap.
    z, z_motion = (x.numpy() for x in latents.latents_from_seeds(
        np.array([7, 8]), source.z_dim, source.motion_dim))
    t = np.array([[2 * source.time_step]], np.float32)
    for i in range(2):
        for j in range(2):
            def tile(index):
                return frame("content_motion", index)[
                    64 * i:64 * (i + 1), 64 * j:64 * (j + 1)]
            assert np.abs(tile(0) - frame(f"video_00{i}", 0)).mean() < 10
            expected = source.render(z[i:i + 1], z_motion[j:j + 1], t)[0, 0]
            swapped = source.render(z[j:j + 1], z_motion[i:i + 1], t)[0, 0]
            assert np.abs(tile(2) - expected).mean() < 10
            assert np.abs(tile(0) - frame(f"video_00{1 - i}", 0)
                          ).mean() > 40
            if i != j:
                assert np.abs(tile(2) - swapped).mean() > 40


def test_long_videos_stream_in_bounded_memory(tmp_path):
    small = tmp_path / "small.keras"
    digan_tf.Generator(resolution=64, fmaps=0.015625, channel_max=8,
                       z_dim=8, w_dim=8, motion_dim=8,
                       num_frequencies=4).save(small)
    peaks = {}
    for frames in (200, 1000):
        result = _generate(f"--model={small}",
                           f"--output_dir={tmp_path / str(frames)}",
                           "--num_videos=1", f"--num_frames={frames}",
                           "--chunk_frames=50", "--nogrid")
        assert result.returncode == 0, result.stderr[-3000:]
        peaks[frames] = float(re.search(r"peak memory (\d+) MB",
                                        result.stdout).group(1))
    assert len(_frames(tmp_path / "1000" / "video_000.mp4")) == 1000
    with Image.open(tmp_path / "1000" / "video_000.gif") as gif:
        assert gif.n_frames == 1000
    # Holding the video would take 800 x 64 x 64 x 3 bytes = 9.8 MB more
    # as uint8 (39 MB as float32) than the 200-frame run.
    assert peaks[1000] - peaks[200] < 4, peaks


def test_smaller_time_steps_interpolate_and_t_past_1_extrapolates(
        keras_file):
    source = sources.open_source(str(keras_file))
    z, z_motion = testing.latents(1, source)
    step = source.time_step
    normal = source.render(z, z_motion, step * np.arange(24)[None])
    fine = source.render(z, z_motion, step / 2 * np.arange(48)[None])
    # Every second frame at half the spacing is a frame at full spacing,
    # including frames past t = 1 (frames 16-23, clip length 16).
    assert np.abs(fine[:, ::2].astype(int) - normal).max() <= 1
    assert np.abs(fine[:, 1::2].astype(int) - normal).max() > 0
    # Past t = 1 the video goes on moving: no frame repeats the last
    # training frame or its predecessor (a clamped t would).
    past = normal[0, 15:].astype(int)
    assert (np.abs(np.diff(past, axis=0)).mean(axis=(1, 2, 3)) > 0.5).all()


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
