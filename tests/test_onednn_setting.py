"""Importing digan_tf turns TensorFlow's oneDNN kernels on (TensorFlow
leaves them off on AMD CPUs) unless the user chose: README "Speed"."""

import pytest

from tests.subprocesses import python_command
from tests.subprocesses import quiet_env
from tests.subprocesses import run

# What TensorFlow itself reports, in a process that imports digan_tf
# first (as our tools and the tests' conftest do).
_REPORT = """
import digan_tf
from tensorflow.python.util import _pywrap_util_port
print(_pywrap_util_port.IsMklEnabled())
"""


@pytest.mark.parametrize("user_setting, enabled", [
    (None, "True"), ("0", "False"), ("1", "True")])
def test_importing_digan_tf_first_turns_onednn_on_unless_the_user_chose(
        user_setting, enabled):
    env = quiet_env()
    env.pop("TF_ENABLE_ONEDNN_OPTS", None)
    if user_setting is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = user_setting
    result = run(python_command("-c", _REPORT), env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-1] == enabled
