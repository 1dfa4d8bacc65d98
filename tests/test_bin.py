"""bin/import_official, run as users run it."""


import keras
import numpy as np
import pytest

from tests.subprocesses import ROOT
from tests.subprocesses import run_tool

pytestmark = pytest.mark.slow  # subprocesses and real runs

GOLDEN = ROOT / "tests" / "data" / "digan_r128_uncond.npz"


def test_import_official_writes_models_that_match_the_golden(tmp_path):
    output = tmp_path / "digan.keras"
    result = run_tool("import_official", f"--npz={GOLDEN}", f"--output={output}")
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
    missing = run_tool("import_official", f"--npz={tmp_path}/none.npz",
                   f"--output={tmp_path}/g.keras")
    assert missing.returncode != 0
    assert "--npz: no such file" in missing.stderr
    wrong = run_tool("import_official", f"--npz={GOLDEN}",
                 f"--output={tmp_path}/g.h5")
    assert wrong.returncode != 0
    assert "--output must end in '.keras'" in wrong.stderr
    assert not list(tmp_path.iterdir())
