"""bin/train as users run it: flags, crash and resume, divergence."""

import json
import math
import os
import signal
import subprocess
import time

import numpy as np
import pytest
import tensorflow as tf

from digan_tf import run_dir as run_dirs
from digan_tf.generation import sources
from digan_tf.training import train_config
from digan_tf.training import trainer
from tests import testing
from tests.subprocesses import ROOT
from tests.subprocesses import python_command
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


# bin/train on a CPU split into two logical devices: what MirroredStrategy
# sees on a machine with two GPUs (none here), set before bin/train runs.
_TWO_DEVICES = """
import runpy, sys
import tensorflow as tf
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration()] * 2)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_conditional_run_with_the_mirrored_strategy_over_two_devices(
        tmp_path):
    def train(run_dir, *extra):
        return run(python_command("-c", _TWO_DEVICES, ROOT / "bin" / "train",
                                  *TINY, f"--run_dir={run_dir}",
                                  "--strategy=mirrored", *extra))

    odd = train(tmp_path / "odd", "--batch_size=3")
    assert odd.returncode != 0
    assert "divisible by the 2 replicas" in odd.stderr
    result = train(tmp_path / "run", "--conditional", "--max_steps=2")
    assert result.returncode == 0, result.stderr[-3000:]
    generator, class_names, latest = run_dirs.load_ema_generator(
        str(tmp_path / "run"))
    assert latest.endswith("ckpt-2")
    # The demo's classes are its shapes; the label picks the video.
    assert class_names == ["circle", "square"]
    assert generator.num_classes == 2
    source = sources.from_generator(generator, class_names)
    z, z_motion = testing.latents(1, generator)
    t = np.zeros((1, 2), np.float32)
    circle, square = (source.render(z, z_motion, t, labels=[label])
                      for label in (0, 1))
    assert np.abs(circle.astype(int) - square).mean() > 5


# Reads each flagfile through bin/train's own flag definitions, builds the
# model it configures (at a small size: the optimizers do not depend on
# it) and prints the configs and the optimizers' settings.
_FLAGFILE_SETTINGS = """
import dataclasses, json, runpy, sys
from absl import flags
from digan_tf.training import train_config, trainer
runpy.run_path("bin/train", run_name="flag_definitions")
settings = {}
for path in sys.argv[1:]:
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["train", "--flagfile=" + path])
    config = train_config.TrainConfig(**{
        f.name: flags.FLAGS[f.name].value
        for f in dataclasses.fields(train_config.TrainConfig)})
    model = trainer.build_model(dataclasses.replace(
        config, resolution=32, fmaps=0.03125, channel_max=16, z_dim=8,
        w_dim=8, motion_dim=8))
    adam = {name: [float(optimizer.learning_rate), optimizer.beta_1,
                   optimizer.beta_2, optimizer.epsilon]
            for name, optimizer in (("g", model.g_optimizer),
                                    ("d", model.d_optimizer))}
    settings[path] = dict(config=config.to_json(), adam=adam,
                          ema_kimg=model.ema_kimg,
                          fourier_scale=model.generator.fourier_scale)
print(json.dumps(settings))
"""
PAPER_DATASETS = ("kinetics", "sky", "taichi", "ucf101")


def test_generator_size_flags_build_the_generator_they_name():
    """--z_dim, --w_dim, --motion_dim and --fourier_scale reach the
    generator and its EMA copy; a non-positive scale, or a negative
    --intra_op_threads, names its flag."""
    small = dict(data_dir="demo", run_dir="unused", resolution=32,
                 fmaps=0.03125, channel_max=16)
    model = trainer.build_model(train_config.TrainConfig(
        **small, z_dim=8, w_dim=6, motion_dim=5, fourier_scale=1.5))
    for generator in (model.generator, model.ema_generator):
        assert (generator.z_dim, generator.w_dim, generator.motion_dim,
                generator.fourier_scale) == (8, 6, 5, 1.5)
    with pytest.raises(ValueError, match="fourier_scale"):
        train_config.TrainConfig(**small, fourier_scale=0.0)
    with pytest.raises(ValueError, match="intra_op_threads"):
        train_config.TrainConfig(**small, intra_op_threads=-1)


def test_paper_flagfiles_give_the_papers_settings():
    """The values of DIGAN.md section 4, with the authors' rescaling of both
    optimizers (D regularized every 16 steps, G every 4)."""
    paths = [f"configs/{name}.flags" for name in PAPER_DATASETS]
    result = run(python_command("-c", _FLAGFILE_SETTINGS, *paths))
    assert result.returncode == 0, result.stderr[-3000:]
    every = json.loads(result.stdout.splitlines()[-1])
    for name, path in zip(PAPER_DATASETS, paths):
        config, adam = every[path]["config"], every[path]["adam"]
        assert {k: config[k] for k in (
            "resolution", "fmaps", "channel_max", "z_dim", "w_dim",
            "motion_dim", "batch_size", "clip_length", "r1_gamma",
            "r1_interval", "augment", "conditional", "mixed_precision",
            "ema_kimg")} == dict(
                resolution=128, fmaps=1.0, channel_max=512, z_dim=512,
                w_dim=512, motion_dim=512, batch_size=64, clip_length=16,
                r1_gamma=1.0, r1_interval=16, augment=True,
                conditional=False, mixed_precision="float32",
                ema_kimg=0.0), path
        assert config["data_dir"] == f"data/{name}"
        np.testing.assert_allclose(adam["d"], [0.0023529, 0.0, 0.9905855,
                                               1e-8], rtol=2e-5)
        np.testing.assert_allclose(adam["g"], [0.002, 0.0, 0.9919920, 1e-8],
                                   rtol=2e-5)
        assert every[path]["ema_kimg"] is None  # default: batch * 10 / 32
        np.testing.assert_allclose(every[path]["fourier_scale"],
                                   math.sqrt(10.0), rtol=1e-12)
