"""Errors in library terms, said in flag terms by the `bin/` scripts."""

import pytest

from digan_tf.utils import cli
from tests.subprocesses import run_tool


def test_backticked_arguments_that_are_flags_become_flags():
    message = "`resolution`=48 but `data_dir` 'd' and `other` differ."
    assert cli.in_flag_terms(message, {"resolution", "data_dir"}) == (
        "--resolution=48 but --data_dir 'd' and `other` differ.")


def test_aliases_name_the_flag_that_feeds_an_argument():
    assert cli.in_flag_terms("`path`: no such file 'x'.", {"model"},
                             aliases={"path": "model"}) == (
        "--model: no such file 'x'.")
    assert cli.in_flag_terms("`path`: no such file.", {"path"}) == (
        "--path: no such file.")


@pytest.mark.slow
def test_bin_train_says_library_errors_in_its_flags(tmp_path):
    """The metrics check raised in the evaluation library names `metrics`
    and `data_dir`; bin/train prints them as its flags."""
    result = run_tool(
        "train", "--data_dir=demo", f"--run_dir={tmp_path / 'run'}",
        "--resolution=32", "--fmaps=0.03125", "--channel_max=16",
        "--demo_videos=4", "--clip_length=8", "--metrics=fvd128_randinit",
        "--max_steps=1", "--run_eagerly=true")
    assert result.returncode != 0
    assert ("--metrics=fvd128_randinit needs videos of at least 128 frames; "
            "--data_dir '") in result.stderr, result.stderr[-2000:]
    assert "`" not in result.stderr.splitlines()[-1]
