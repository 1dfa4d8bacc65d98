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
def test_bin_train_names_the_metrics_flag_it_was_given(tmp_path):
    """The metrics callback counts clips with its own `num_videos`; bin/train
    must name the flag the user set (--metrics_videos)."""
    result = run_tool(
        "train", "--data_dir=demo", f"--run_dir={tmp_path / 'run'}",
        "--resolution=32", "--fmaps=0.03125", "--channel_max=16",
        "--demo_videos=4", "--clip_length=8", "--metrics=fvd16_randinit",
        "--metrics_videos=500", "--max_steps=1", "--run_eagerly=true")
    assert result.returncode != 0
    assert "--metrics_videos=500 but --data_dir" in result.stderr, \
        result.stderr[-2000:]
    assert "num_videos" not in result.stderr
