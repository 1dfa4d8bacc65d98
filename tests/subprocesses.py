"""Child processes for the tests that run things as users do: `bin/`
scripts, and Python snippets that must not import our code."""

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).parent.parent


def quiet_env(**variables):
    """This process's environment without TensorFlow's C++ start-up logs,
    plus `variables`."""
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **variables)


def python_command(*args):
    """The command that runs this Python with `args` (a script or -c)."""
    return [sys.executable, *map(str, args)]


def tool_command(tool, *args):
    """The command that runs `bin/<tool>` with `args`."""
    return python_command(ROOT / "bin" / tool, *args)


def run(command, timeout=600, env=None):
    """Runs `command` from the repository root; text output captured."""
    return subprocess.run(command, capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT,
                          env=quiet_env() if env is None else env)


def run_tool(tool, *args, timeout=600):
    """Runs `bin/<tool>` as a user would; returns the CompletedProcess."""
    return run(tool_command(tool, *args), timeout=timeout)
