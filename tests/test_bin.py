"""The command-line tools, run as users run them."""

import pathlib
import subprocess
import sys

import av
import keras
import numpy as np
from PIL import Image

import digan_tf
from tests import testing

ROOT = pathlib.Path(__file__).parent.parent
GOLDEN = ROOT / "tests" / "data" / "digan_r128_uncond.npz"


def _run(tool, *args):
    return subprocess.run(
        [sys.executable, str(ROOT / "bin" / tool), *args],
        capture_output=True, text=True, timeout=300,
    )


def test_import_official_writes_models_that_match_the_golden(tmp_path):
    output = tmp_path / "digan.keras"
    result = _run("import_official", f"--npz={GOLDEN}", f"--output={output}")
    assert result.returncode == 0, result.stderr[-3000:]
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["digan.image_discriminator.keras", "digan.keras",
                       "digan.motion_discriminator.keras"]
    generator = keras.models.load_model(output)
    with np.load(GOLDEN) as golden:
        frames = generator(golden["in.z_content"], golden["in.z_motion"],
                           golden["in.timestamps"]).numpy()
        np.testing.assert_allclose(frames, golden["out.frames"], atol=1e-4)
        motion_d = keras.models.load_model(
            tmp_path / "digan.motion_discriminator.keras")
        np.testing.assert_allclose(motion_d(golden["in.d_input"]).numpy(),
                                   golden["out.motion_logits"], atol=1e-4)


def test_import_official_errors_name_the_flag(tmp_path):
    missing = _run("import_official", f"--npz={tmp_path}/none.npz",
                   f"--output={tmp_path}/g.keras")
    assert missing.returncode != 0
    assert "--npz: no such file" in missing.stderr
    wrong = _run("import_official", f"--npz={GOLDEN}",
                 f"--output={tmp_path}/g.h5")
    assert wrong.returncode != 0
    assert "--output must end in '.keras'" in wrong.stderr
    assert not list(tmp_path.iterdir())


def test_generate_writes_gif_and_mp4_per_video_and_a_grid(tmp_path):
    model = digan_tf.Generator(**testing.TINY_GENERATOR)
    model.save(tmp_path / "g.keras")
    out = tmp_path / "samples"
    result = _run("generate", f"--model={tmp_path / 'g.keras'}",
                  f"--output_dir={out}", "--num_videos=3", "--num_frames=5")
    assert result.returncode == 0, result.stderr[-3000:]
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(f"{n}.{e}" for n in
                           ["video_000", "video_001", "video_002", "grid"]
                           for e in ["gif", "mp4"])
    with av.open(str(out / "video_001.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24")
                  for f in container.decode(video=0)]
    assert len(frames) == 5 and frames[0].shape == (64, 64, 3)
    with Image.open(out / "grid.gif") as gif:
        assert gif.n_frames == 5 and gif.size == (128, 128)


def test_generate_reports_a_missing_model(tmp_path):
    result = _run("generate", f"--model={tmp_path}/none.keras",
                  f"--output_dir={tmp_path}/out")
    assert result.returncode != 0
    assert "--model: no such file" in result.stderr
    unknown = _run("generate", f"--output_dir={tmp_path}/out", "--frames=3")
    assert unknown.returncode != 0 and "frames" in unknown.stderr
