"""Our tools hide TensorFlow's C++ log lines and nothing else
(utils/cpp_logs.py)."""

import re
import textwrap

import pytest

from tests.subprocesses import python_command
from tests.subprocesses import quiet_env
from tests.subprocesses import run
from tests.subprocesses import run_tool

ABSL_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\]",
                       re.MULTILINE)

_WRITER = textwrap.dedent("""
    import os, sys
    import digan_tf  # installs the filter when DIGAN_TF_QUIET=1
    os.write(2, b"I0000 00:00:1796122540.824254   19172 port.cc:153] "
                b"oneDNN custom operations are on.\\n")
    os.write(2, b"E0000 00:00:1796122544.127403   19172 cuda_platform.cc:52]"
                b" failed call to cuInit\\nours: kept\\n")
    os.write(2, b"F0000 00:00:1796122544.1 19172 a.cc:1] fatal stays\\n")
    sys.stderr.write("bar 1/2\\rbar 2/2\\r")
    sys.stderr.write("no newline at the end")
""")


@pytest.mark.parametrize("show, expected", [
    # (captured as text, so the bar's carriage returns read as newlines)
    ("0", "ours: kept\nF0000 00:00:1796122544.1 19172 a.cc:1] fatal stays\n"
          "bar 1/2\nbar 2/2\nno newline at the end"),
    ("1", None),
])
def test_filter_drops_absl_lines_and_keeps_the_rest(show, expected):
    # A fresh environment: the parent's DIGAN_TF_CPP_LOGS must not leak in.
    env = quiet_env(DIGAN_TF_QUIET="1", DIGAN_TF_CPP_LOGS=show)
    result = run(python_command("-c", _WRITER), env=env)
    assert result.returncode == 0, result.stderr
    if expected is not None:
        assert result.stderr.endswith(expected)
        assert "cuInit" not in result.stderr and "port.cc" not in result.stderr
    else:
        assert "cuda_platform.cc:52] failed call to cuInit" in result.stderr
        assert "ours: kept" in result.stderr


@pytest.mark.slow
def test_a_tool_prints_only_its_own_lines(tmp_path):
    result = run_tool("generate", f"--output_dir={tmp_path}",
                      "--num_videos=1", "--num_frames=2", "--resolution=32",
                      "--fmaps=0.0625", "--nogif", "--nogrid")
    assert result.returncode == 0, result.stderr[-3000:]
    assert not ABSL_LINE.search(result.stderr), result.stderr
    assert "absl::InitializeLog" not in result.stderr
    assert result.stderr.strip().startswith("generate: 100%")
    assert result.stdout.startswith("Wrote 1 files")
