"""bin/import_official, run as users run it."""

import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.slow  # subprocesses and real runs

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
