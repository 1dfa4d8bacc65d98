"""Inversion of real videos (generation/projection.py, bin/project): the
frame split and its baseline, the fit itself, and what bin/project writes
and how its codes render elsewhere."""

import json
import os

import av
import keras
import numpy as np
import pytest

import digan_tf
from digan_tf.generation import projection
from digan_tf.generation import video_writer
from tests import testing
from tests.subprocesses import run_tool


def _small_range_generator(seed=0):
    """The tiny generator with its ToRGB kernels scaled down, so that its
    frames lie inside [-1, 1] and a video of it survives uint8 intact."""
    keras.utils.set_random_seed(seed)
    generator = digan_tf.Generator(**testing.TINY_GENERATOR)
    for block in generator.synthesis_blocks:
        block.to_rgb.kernel.assign(block.to_rgb.kernel * 0.2)
    return generator


@pytest.fixture(scope="module")
def generator():
    return _small_range_generator()


@pytest.fixture(scope="module")
def own_video(generator):
    """uint8 [16, 64, 64, 3]: the generator's video of random codes."""
    rng = np.random.default_rng(3)
    z = rng.standard_normal((1, 16)).astype(np.float32)
    motion = rng.standard_normal((1, 16)).astype(np.float32)
    times = (generator.time_step * np.arange(16, dtype=np.float32))[None]
    frames = generator(z, motion, times).numpy()[0]
    assert np.abs(frames).max() < 1
    return video_writer.to_uint8(frames)


def test_frame_split_holds_out_interior_frames():
    fitted, held = projection.split_frames(16, 2)
    assert held.tolist() == [1, 3, 5, 7, 9, 11, 13]
    assert fitted.tolist() == [0, 2, 4, 6, 8, 10, 12, 14, 15]
    assert projection.split_frames(8, 3)[1].tolist() == [1, 4]
    for none in (0, 1):
        assert projection.split_frames(5, none)[1].tolist() == []


def test_blend_baseline_and_psnr():
    frames = np.zeros((5, 2, 2, 3), np.uint8)
    frames[0], frames[2], frames[4] = 0, 100, 200
    frames[1], frames[3] = 7, 7
    blended = projection.blend_neighbours(frames, np.array([1, 3]))
    assert blended[:, 0, 0, 0].tolist() == [50, 150]
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 48  # MSE = 48^2 / 48 = 48
    assert projection.psnr(a, b) == pytest.approx(
        10 * np.log10(255 ** 2 / 48))
    assert projection.psnr(a, a) == float("inf")


@pytest.mark.parametrize("space", projection.LATENT_SPACES)
def test_projection_fits_the_generators_own_video(generator, own_video,
                                                  space):
    times = generator.time_step * np.arange(16)
    fitted, held = projection.split_frames(16, 2)
    start = projection.project(generator, own_video[fitted], times[fitted],
                               space, steps=1, progress=False)
    fit = projection.project(generator, own_video[fitted], times[fitted],
                             space, steps=30, progress=False)
    assert fit.losses[-1] < 0.7 * fit.losses[0]
    key = "w" if space == "w" else "z_content"
    assert sorted(fit.codes) == sorted([key, "z_motion"])
    assert fit.codes[key].shape == (1, 16)
    before = projection.psnr(start.render(generator, times), own_video)
    after = projection.psnr(fit.render(generator, times), own_video)
    assert after > before + 1.0
    # The held-out frames improve with the fitted ones: one video, not
    # frames memorised one by one.
    assert projection.psnr(fit.render(generator, times[held]),
                           own_video[held]) > projection.psnr(
        start.render(generator, times[held]), own_video[held]) + 1.0


def test_projection_refuses_what_it_cannot_fit(generator, own_video):
    times = generator.time_step * np.arange(16)
    with pytest.raises(ValueError, match="`latent_space` must be one of"):
        projection.project(generator, own_video, times, "w+", steps=1)
    with pytest.raises(ValueError, match=r"`frames` must be \[T, 64, 64, 3\]"):
        projection.project(generator, own_video[:, :32], times, steps=1)


@pytest.mark.slow
def test_bin_project_writes_the_fit_and_its_codes_render_elsewhere(
        generator, own_video, tmp_path):
    model = tmp_path / "g.keras"
    generator.save(model)
    clip = tmp_path / "clip.mp4"
    video_writer.write_mp4(str(clip), own_video, 8)
    out = tmp_path / "fit"
    result = run_tool("project", f"--model={model}", f"--video={clip}",
                      f"--output_dir={out}", "--steps=15", "--upsample=3")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "project: 100%" in result.stderr  # the progress bar
    assert result.stdout.startswith("PSNR fitted ")
    report = json.loads((out / "report.json").read_text())
    assert report["held_out_frames"] == [1, 3, 5, 7, 9, 11, 13]
    assert report["steps"] == 15 and report["latent_space"] == "w"

    def frames_of(name):
        with av.open(str(out / f"{name}.mp4")) as container:
            return np.stack([f.to_ndarray(format="rgb24")
                             for f in container.decode(video=0)])

    assert frames_of("reconstruction").shape == (16, 64, 64, 3)
    assert frames_of("side_by_side").shape == (16, 64, 128, 3)
    assert len(frames_of("upsampled")) == 15 * 3 + 1
    assert len(frames_of("continuation")) == 32
    assert (out / "loss.png").stat().st_size > 0
    # The report's PSNR is that of the stored codes' render against the
    # decoded clip.
    with np.load(out / "codes.npz") as codes:
        w, motion = codes["w"], codes["z_motion"]
        times = codes["timestamps"]
    rendered = video_writer.to_uint8(generator.synthesize(
        w, motion, times[None]).numpy()[0])
    decoded = projection.read_clip(str(clip), 64, 16)
    fitted = report["fitted_frames"]
    assert report["psnr_fitted"] == pytest.approx(
        projection.psnr(rendered[fitted], decoded[fitted]), abs=1e-6)
    # bin/generate renders the codes: the reconstruction, frame for frame.
    again = tmp_path / "again"
    result = run_tool("generate", f"--model={model}",
                      f"--codes={out / 'codes.npz'}", f"--output_dir={again}",
                      "--num_frames=16", "--nogrid", "--nogif")
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.listdir(again) == ["video_000.mp4"]
    with av.open(str(again / "video_000.mp4")) as container:
        generated = np.stack([f.to_ndarray(format="rgb24")
                              for f in container.decode(video=0)])
    np.testing.assert_array_equal(generated, frames_of("reconstruction"))


@pytest.mark.slow
@pytest.mark.parametrize("flags, message", [
    (["--num_frames=40"], "has 16 frames; --num_frames asks for 40"),
    (["--latent_space=q"], "--latent_space"),
])
def test_bin_project_errors_name_the_flag(generator, own_video, tmp_path,
                                          flags, message):
    model = tmp_path / "g.keras"
    generator.save(model)
    clip = tmp_path / "clip.mp4"
    video_writer.write_mp4(str(clip), own_video, 8)
    result = run_tool("project", f"--model={model}", f"--video={clip}",
                      f"--output_dir={tmp_path / 'out'}", "--steps=1", *flags)
    assert result.returncode != 0
    assert message in result.stderr
    assert not (tmp_path / "out").exists()
