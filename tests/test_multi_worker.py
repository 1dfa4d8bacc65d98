"""Training across worker processes on localhost ports, as on several
machines: TF_CONFIG, MultiWorkerMirroredStrategy, the chief's run dir, a
lost worker, preemption."""

import contextlib
import json
import os
import pathlib
import re
import signal
import subprocess
import time

import numpy as np
import pytest
import tensorflow as tf
import test_train_cli

from digan_tf.training import distribution
from tests.subprocesses import ROOT
from tests.subprocesses import python_command
from tests.subprocesses import quiet_env

pytestmark = pytest.mark.slow  # subprocesses and real runs

WORKERS = 2


@contextlib.contextmanager
def _processes(commands, directory, tf_configs):
    """Starts each command (stdout/stderr to `directory`/<i>.log, its own
    TMPDIR `directory`/tmp<i>, TF_CONFIG from `tf_configs`, None = unset);
    kills whatever still runs on exit."""
    processes = []
    try:
        for index, (command, tf_config) in enumerate(zip(commands,
                                                         tf_configs)):
            temporary = directory / f"tmp{index}"
            temporary.mkdir(parents=True)
            env = quiet_env(TMPDIR=str(temporary))
            env.pop("TF_CONFIG", None)
            if tf_config:
                env["TF_CONFIG"] = tf_config
            log = open(directory / f"{index}.log", "w")
            process = subprocess.Popen(command, stdout=log,
                                       stderr=subprocess.STDOUT, cwd=ROOT,
                                       env=env)
            process.log_path = directory / f"{index}.log"
            processes.append(process)
            log.close()
        yield processes
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)


def _workers(commands, directory):
    return _processes(commands, directory,
                      distribution.localhost_tf_configs(len(commands)))


def _log(process):
    return process.log_path.read_text()


def _log_tail(process):
    """The end of a worker's log, for an assertion's message."""
    return _log(process)[-3000:]


def _logs(processes):
    """The ends of the workers' logs as one string, for an assertion's
    message: pytest cuts a list's repr to a few hundred characters, which
    hid why both workers of a CI run exited 1 instead of saving."""
    return "\n--- the next worker ---\n".join(
        _log_tail(process) for process in processes)


def _wait(process, timeout):
    """Exit code; fails (not hangs) if the process runs past `timeout`."""
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running after {timeout} s:\n"
                    f"{_log_tail(process)}")


def _wait_for(condition, processes, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        for process in processes:
            assert process.poll() is None, (
                f"exited while waiting for {what}:\n{_log_tail(process)}")
        assert time.monotonic() < deadline, f"no {what} in {timeout} s"
        time.sleep(0.2)


# === Two workers equal one process ===

def test_two_workers_train_like_one_process_with_the_same_global_batch(
        tmp_path):
    """Two worker processes with a global batch of 4 (2 each) and one
    process with the same 4 samples, 2 steps (the first with R1): both
    workers end with the same variables, equal to the single process' up
    to float32 summation order."""
    def command(name):
        return python_command(ROOT / "tests" / "fixed_batch_worker.py",
                              f"--output={tmp_path / name}.npz", "--steps=2",
                              "--eager")

    commands = [command(f"worker{i}") for i in range(WORKERS)]
    tf_configs = distribution.localhost_tf_configs(WORKERS)
    with _processes(commands + [command("single")], tmp_path / "runs",
                    tf_configs + [None]) as processes:
        for process in processes:
            assert _wait(process, 400) == 0, _log_tail(process)
    worker0, worker1, single = (
        np.load(tmp_path / f"{name}.npz")
        for name in ("worker0", "worker1", "single"))
    names = [name for name in single.files if name.startswith("v")]
    assert len(names) > 100
    step, g_iterations, d_iterations = (single[n] for n in names[-3:])
    assert (step, g_iterations, d_iterations) == (2, 2, 3)
    for name in names:
        np.testing.assert_array_equal(worker0[name], worker1[name],
                                      err_msg=name)
        np.testing.assert_allclose(worker0[name], single[name], rtol=1e-4,
                                   atol=1e-5, err_msg=name)
    print("max |2 workers - 1 process|:", max(
        np.abs(worker0[name] - single[name]).max() for name in names))


# === bin/train: lost worker, restart, preemption ===

def _train_command(run_dir, *extra):
    return test_train_cli._command(run_dir, "--strategy=multi_worker",
                                   "--r1_interval=1000", *extra)


def _checkpoint_step(path):
    return test_train_cli._checkpoint_value(
        path, "_step/.ATTRIBUTES/VARIABLE_VALUE")


def test_lost_worker_stops_the_job_and_a_restart_resumes_until_sigterm(
        tmp_path):
    run_dir = tmp_path / "run"
    checkpoints = run_dir / "checkpoints"

    # 1. SIGKILL worker 1 once checkpoints exist: the chief exits non-zero,
    # within TensorFlow's heartbeat timeout, naming the checkpoint.
    commands = [_train_command(run_dir, "--max_steps=1000",
                               "--checkpoint_every=1")] * WORKERS
    with _workers(commands, tmp_path / "first") as (chief, worker):
        _wait_for((checkpoints / "ckpt-1.index").exists, [chief, worker],
                  400, "checkpoint")
        worker.send_signal(signal.SIGKILL)
        started = time.monotonic()
        assert _wait(chief, 120) != 0
        lost_after = time.monotonic() - started
    log = _log(chief)
    assert "worker 0 of 2: the cluster lost a worker" in log, log[-3000:]
    latest = tf.train.latest_checkpoint(str(checkpoints))
    assert f"resume from the last checkpoint ({latest})" in log
    step = _checkpoint_step(latest)
    d_iterations = test_train_cli._checkpoint_value(
        latest, "d_optimizer/0000_iteration/.ATTRIBUTES/VARIABLE_VALUE")
    assert step >= 1 and d_iterations == step + 1  # one R1 step (step 0)
    print(f"chief stopped {lost_after:.1f} s after worker 1 was killed")

    # 2. Restart both: both resume from that step with the optimizer state;
    # SIGTERM on worker 1 makes every worker save the same later step and
    # exit with the preemption code.
    commands = [_train_command(run_dir, "--max_steps=1000",
                               "--checkpoint_every=1000")] * WORKERS
    with _workers(commands, tmp_path / "second") as processes:
        chief, worker = processes
        _wait_for(lambda: "train:" in _log(chief), processes, 400,
                  "training step")
        worker.send_signal(signal.SIGTERM)
        codes = [_wait(process, 180) for process in processes]
    resumed = (f"Resumed from {latest}: step {step}, images seen "
               f"{4 * step}, D optimizer iterations {d_iterations}")
    for process in processes:
        assert resumed in _log(process), _log_tail(process)
    assert codes == [distribution.PREEMPTED_EXIT_CODE] * WORKERS, _logs(
        processes)
    final = tf.train.latest_checkpoint(str(checkpoints))
    assert f"preempted (SIGTERM): saved {final}" in _log(chief)
    final_step = _checkpoint_step(final)
    assert final_step > step
    assert test_train_cli._checkpoint_value(
        final, "g_optimizer/0000_iteration/.ATTRIBUTES/VARIABLE_VALUE") == (
            final_step)

    # Only the chief wrote the run dir (one TensorBoard file per run); the
    # other worker's temporary directory is gone after its clean exit.
    assert len(list((run_dir / "tensorboard").iterdir())) == 2
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "checkpoints", "config.json", "demo_data", "generator.json",
        "samples", "tensorboard"]
    assert not [p for p in run_dir.rglob("*") if "_temp" in p.name]
    assert not list((tmp_path / "second" / "tmp1").glob("digan-worker-*"))

    # 3. A worker that cannot see the chief's run dir (here: another path)
    # would train other weights: every worker stops and says why.
    commands = [_train_command(run_dir), _train_command(tmp_path / "other")]
    with _workers(commands, tmp_path / "third") as processes:
        codes = [_wait(process, 180) for process in processes]
    assert codes == [1, 1], _logs(processes)
    for process in processes:
        assert "train: the workers see different newest checkpoints" in (
            _log(process))
        assert (f"(ckpt-{final_step}, none): --run_dir must be the same "
                "shared directory") in _log(process)


def test_sigterm_saves_a_checkpoint_in_a_single_process_too(tmp_path):
    run_dir = tmp_path / "run"
    command = test_train_cli._command(run_dir, "--max_steps=1000",
                                      "--checkpoint_every=1000")
    with _processes([command], tmp_path / "logs", [None]) as (process,):
        _wait_for(lambda: "train:" in _log(process), [process], 300,
                  "training step")
        process.send_signal(signal.SIGTERM)
        assert _wait(process, 120) == distribution.PREEMPTED_EXIT_CODE
    final = tf.train.latest_checkpoint(str(run_dir / "checkpoints"))
    assert f"preempted (SIGTERM): saved {final}" in _log(process)
    assert _checkpoint_step(final) >= 1


# === Roles from TF_CONFIG ===

@pytest.mark.parametrize("cluster, task, chief", [
    ({"worker": ["a:1", "b:1"]}, ("worker", 0), True),
    ({"worker": ["a:1", "b:1"]}, ("worker", 1), False),
    ({"chief": ["c:1"], "worker": ["a:1"]}, ("chief", 0), True),
    ({"chief": ["c:1"], "worker": ["a:1"]}, ("worker", 0), False),
])
def test_the_chief_is_the_chief_task_or_worker_0(monkeypatch, cluster, task,
                                                 chief):
    monkeypatch.setenv("TF_CONFIG", json.dumps({
        "cluster": cluster, "task": {"type": task[0], "index": task[1]}}))
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    assert distribution.is_chief(resolver) is chief
    total = len(cluster[task[0]])
    assert distribution.describe(resolver) == (
        f"{task[0]} {task[1]} of {total}")


def test_one_process_is_its_own_chief(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    assert distribution.is_chief(resolver) and distribution.is_chief(None)
    assert distribution.describe(resolver) == "single process"


def test_other_workers_write_to_a_directory_removed_even_on_errors(
        tmp_path):
    with distribution.output_dir(str(tmp_path), chief=True) as output:
        assert output == str(tmp_path)
    with pytest.raises(RuntimeError, match="boom"):
        with distribution.output_dir(str(tmp_path), chief=False) as output:
            assert not output.startswith(str(tmp_path))
            (pathlib.Path(output) / "checkpoints").mkdir()
            raise RuntimeError("boom")
    assert not os.path.exists(output)
    assert os.path.exists(tmp_path)


@pytest.mark.parametrize("tf_config, message", [
    ("{worker: 1}", "TF_CONFIG is not JSON"),
    ('{"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}',
     'TF_CONFIG needs a "cluster"'),
    ('{"cluster": {"worker": ["a:1"]}}',
     'TF_CONFIG needs this process\' "task"'),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", '
     '"index": 1}}', "\"index\": <its position"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", '
     '"index": 0}}', "a job of the cluster: ['worker']"),
])
def test_malformed_tf_config_is_named(tf_config, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        distribution.check_tf_config(tf_config)


def test_bin_train_stops_on_a_malformed_tf_config(tmp_path):
    with _processes([_train_command(tmp_path / "run")], tmp_path / "logs",
                    ['{"cluster": {"worker": ["a:1"]}}']) as (process,):
        assert _wait(process, 120) != 0
    assert "train: TF_CONFIG needs this process' \"task\"" in _log(process)
    assert not (tmp_path / "run").exists()
