"""bin/train as users run it: flags, crash and resume, divergence."""

import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest
import tensorflow as tf

from tests.subprocesses import ROOT
from tests.subprocesses import run
from tests.subprocesses import tool_command

pytestmark = pytest.mark.slow  # subprocesses and real runs

TINY = ["--data_dir=demo", "--resolution=32", "--fmaps=0.03125",
        "--channel_max=16", "--batch_size=4", "--clip_length=8",
        "--demo_videos=8", "--num_samples=2", "--log_every=1",
        "--sample_every=1000", "--run_eagerly=true"]


def _command(run_dir, *extra):
    return tool_command("train", *TINY, f"--run_dir={run_dir}", *extra)


def _run(run_dir, *extra):
    return run(_command(run_dir, *extra))


def _checkpoint_value(path, suffix):
    reader = tf.train.load_checkpoint(path)
    keys = [k for k in reader.get_variable_to_shape_map()
            if k.endswith(suffix)]
    assert len(keys) == 1, (suffix, keys)
    return int(reader.get_tensor(keys[0]))


@pytest.mark.parametrize("flag, message", [
    ("--resolution=48", "--resolution must be a power of two"),
    ("--batch_size=0", "--batch_size must be an integer >= 1"),
    ("--strategy=tpu", "--strategy must be one of"),
    ("--mixed_precision=fp8", "--mixed_precision must be one of"),
    ("--no_such_flag=1", "Unknown command line flag 'no_such_flag'"),
])
def test_bad_flags_stop_before_any_work(tmp_path, flag, message):
    result = _run(tmp_path / "run", flag)
    assert result.returncode != 0
    assert message in result.stderr
    assert not (tmp_path / "run").exists()


def test_resumes_after_sigkill_with_the_same_state(tmp_path):
    run_dir = tmp_path / "run"
    checkpoints = run_dir / "checkpoints"
    process = subprocess.Popen(
        _command(run_dir, "--max_steps=50", "--checkpoint_every=2"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    deadline = time.time() + 400
    # Wait for the checkpoint state file, written after the checkpoint.
    while tf.train.latest_checkpoint(str(checkpoints)) is None:
        assert process.poll() is None, process.stderr.read().decode()[-3000:]
        assert time.time() < deadline
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()

    latest = tf.train.latest_checkpoint(str(checkpoints))
    step = _checkpoint_value(latest, "_step/.ATTRIBUTES/VARIABLE_VALUE")
    # A save the kill cut short, as TensorFlow leaves it: it must be
    # neither resumed from nor left behind.
    partial = checkpoints / f"ckpt-{step + 1}_temp"
    partial.mkdir(exist_ok=True)
    (partial / "part-00000-of-00001.data-00000-of-00001").write_bytes(
        b"\0" * 100)
    d_iterations = _checkpoint_value(
        latest, "d_optimizer/0000_iteration/.ATTRIBUTES/VARIABLE_VALUE")
    assert step >= 2 and d_iterations == step + 1  # one R1 step (step 0)

    result = _run(run_dir, f"--max_steps={step + 2}", "--checkpoint_every=2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (f"Resumed from {latest}: step {step}, images seen {4 * step}, "
            f"D optimizer iterations {d_iterations}") in result.stdout
    final = tf.train.latest_checkpoint(str(checkpoints))
    assert final.endswith(f"ckpt-{step + 2}")
    assert _checkpoint_value(
        final, "g_optimizer/0000_iteration/.ATTRIBUTES/VARIABLE_VALUE") == (
            step + 2)
    # Nothing in the run dir is half-written.
    state = tf.train.get_checkpoint_state(str(checkpoints))
    for path in state.all_model_checkpoint_paths:
        reader = tf.train.load_checkpoint(path)
        for key in reader.get_variable_to_shape_map():
            reader.get_tensor(key)
    leftovers = [p for p in run_dir.rglob("*") if "tmp" in p.name
                 or "_temp" in p.name]
    assert not leftovers
    config = json.loads((run_dir / "config.json").read_text())
    for flag in TINY + [f"--max_steps={step + 2}"]:
        name, value = flag[2:].split("=")
        assert str(config[name]).lower() == value, (name, config[name])
    # --seed fixes the whole run (weights, data, draws): a run straight to
    # the step the kill left equals that checkpoint in every variable, so
    # the checkpoint was whole. (After a restart the data order differs:
    # the input iterator is not checkpointed, README "Training".)
    straight = tmp_path / "straight"
    result_straight = _run(straight, f"--max_steps={step}",
                           f"--checkpoint_every={step}")
    assert result_straight.returncode == 0, result_straight.stderr[-3000:]
    killed = tf.train.load_checkpoint(latest)
    reference = tf.train.load_checkpoint(tf.train.latest_checkpoint(
        str(straight / "checkpoints")))

    def variables(reader):
        return {k for k in reader.get_variable_to_shape_map()
                if k != "_CHECKPOINTABLE_OBJECT_GRAPH"
                and not k.startswith("save_counter")}

    assert variables(killed) == variables(reference)
    assert len(variables(killed)) > 400
    for key in variables(killed):
        np.testing.assert_array_equal(killed.get_tensor(key),
                                      reference.get_tensor(key), err_msg=key)
    samples = sorted(os.listdir(run_dir / "samples"))
    assert f"step-{step + 2:07d}.gif" in samples
    # The last lines say what was written and what to run next.
    for line in (f"  checkpoint   {final}",
                 f"  TensorBoard  tensorboard --logdir {run_dir}/tensorboard",
                 f"  bin/export --run_dir={run_dir} --name=run",
                 f"  bin/generate --model={run_dir} --output_dir=run_videos",
                 f"  bin/evaluate --model={run_dir} --data_dir="
                 f"{run_dir}/demo_data"):
        assert line in result.stdout.splitlines(), result.stdout[-2000:]
    assert (f"  samples      {run_dir}/samples/step-{step + 2:07d}.gif"
            in result.stdout)
    assert _tensorboard_tags(run_dir) >= {"Loss/g_loss", "Loss/d_loss",
                                          "Loss/r1_penalty", "samples",
                                          "Progress/images_per_second"}


def _tensorboard_tags(run_dir):
    tags = set()
    for path in (run_dir / "tensorboard").glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            tags.update(value.tag for value in event.summary.value)
    return tags


def test_diverging_losses_stop_and_keep_the_last_good_checkpoint(tmp_path):
    """Two good steps, then a resume with a learning rate (the new flag
    takes effect on resume, not the checkpoint's) that blows the
    generator up in its first update (the G phase runs first, so the D
    phase of that same step sees non-finite fakes)."""
    run_dir = tmp_path / "run"
    assert _run(run_dir, "--max_steps=2", "--checkpoint_every=1"
                ).returncode == 0
    result = _run(run_dir, "--max_steps=20", "--checkpoint_every=1",
                  "--g_lr=1e30")
    assert result.returncode != 0
    assert "at step 3; training stopped, last good checkpoint" in (
        result.stderr)
    latest = tf.train.latest_checkpoint(str(run_dir / "checkpoints"))
    assert latest.endswith("ckpt-2") and latest in result.stderr
