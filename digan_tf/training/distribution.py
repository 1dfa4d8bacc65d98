"""Training across processes and machines with MultiWorkerMirroredStrategy:
which worker writes the run dir (the chief), where the others write (a
temporary directory, removed when they finish), and how a SIGTERM or a lost
worker ends a run.

The cluster comes from `TF_CONFIG` in TensorFlow's format; the chief is the
`chief` task when the cluster has one, else worker 0. Every worker reads the
newest checkpoint from the chief's `--run_dir`, so on several machines it
must be the same path on a shared file system (NFS, gs://).
"""

import contextlib
import json
import os
import re
import shutil
import socket
import tempfile

import tensorflow as tf

# What `bin/train` exits with after a preemption checkpoint: 128 + SIGTERM,
# the code TensorFlow's GCE preemption handling also treats as restartable.
PREEMPTED_EXIT_CODE = 143


class Preempted(Exception):
    """A worker got SIGTERM; every worker saved a checkpoint after the same
    step and stopped. Running the same command again resumes there."""


class WorkerLost(RuntimeError):
    """A collective failed because another worker died or is unreachable."""


def check_tf_config(text):
    """Raises a ValueError naming TF_CONFIG unless `text` (its value) is
    TensorFlow's format: a "cluster" of jobs listing "host:port" addresses
    and this process' "task", a job of the cluster and an index in it."""
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not JSON ({error}): {text!r}")
    cluster = spec.get("cluster") if isinstance(spec, dict) else None
    if not isinstance(cluster, dict) or not cluster or not all(
            isinstance(a, list) and a for a in cluster.values()):
        raise ValueError(
            'TF_CONFIG needs a "cluster" of jobs and their addresses, e.g. '
            '{"worker": ["host1:12345", "host2:12345"]}; got '
            f"{cluster!r}.")
    task = spec.get("task")
    job = task.get("type") if isinstance(task, dict) else None
    index = task.get("index") if isinstance(task, dict) else None
    if job not in cluster or not isinstance(index, int) or not (
            0 <= index < len(cluster[job])):
        raise ValueError(
            'TF_CONFIG needs this process\' "task": {"type": <a job of the '
            f'cluster: {sorted(cluster)}>, "index": <its position in the '
            f"job's list>}}; got {task!r}.")


def localhost_tf_configs(workers):
    """TF_CONFIG values for `workers` processes on free ports of this
    machine (tests, benchmarks, trying multi-worker training locally)."""
    sockets = [socket.socket() for _ in range(workers)]
    try:
        for s in sockets:
            s.bind(("localhost", 0))
        addresses = [f"localhost:{s.getsockname()[1]}" for s in sockets]
    finally:
        for s in sockets:
            s.close()
    return [json.dumps({"cluster": {"worker": addresses},
                        "task": {"type": "worker", "index": index}})
            for index in range(workers)]


def cluster_resolver(strategy):
    """The strategy's `ClusterResolver` (None when it has none)."""
    return getattr(strategy, "cluster_resolver", None)


def _in_cluster(resolver):
    return resolver is not None and bool(resolver.cluster_spec().jobs)


def is_chief(resolver):
    """Whether this process writes the run dir: the `chief` task, worker 0
    of a cluster without one, or the only process (`resolver` None or with
    an empty cluster)."""
    if not _in_cluster(resolver):
        return True
    jobs = resolver.cluster_spec().jobs
    if "chief" in jobs:
        return resolver.task_type == "chief"
    return resolver.task_type == "worker" and resolver.task_id == 0


def describe(resolver):
    """`worker 1 of 2` (or `single process`), for messages."""
    if not _in_cluster(resolver):
        return "single process"
    total = resolver.cluster_spec().num_tasks(resolver.task_type)
    return f"{resolver.task_type} {resolver.task_id} of {total}"


@contextlib.contextmanager
def output_dir(run_dir, chief):
    """Yields where this worker writes its checkpoints, summaries, samples
    and demo data: `run_dir` on the chief; elsewhere a fresh local
    temporary directory (MultiWorkerMirroredStrategy needs every worker to
    take part in each save), removed when the block exits, however it
    exits."""
    if chief:
        yield run_dir
        return
    directory = tempfile.mkdtemp(prefix="digan-worker-")
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def preemption_handler(resolver, save, checkpoint_dir):
    """Yields a `tf.distribute.experimental.PreemptionCheckpointHandler`:
    after a SIGTERM on any worker, every worker calls `save()` (which
    returns the checkpoint path) after the same step, then `Preempted` is
    raised, naming the checkpoint in `checkpoint_dir` (the chief's). Call
    its `save_checkpoint_if_preempted()` once per step.

    The handler counts its calls to align the workers; that count must be
    the same on every worker, so it is not persisted: the handler restores
    from an empty directory (the run's own step counter lives in the real
    checkpoints) and starts at 0 on every worker.
    """
    saved = []

    def save_and_remember():
        saved.append(save())

    def stop():
        path = os.path.join(checkpoint_dir, os.path.basename(saved[-1]))
        raise Preempted(f"preempted (SIGTERM): saved {path}; run the same "
                        "command (on every worker) to resume.")

    config = tf.distribute.experimental.TerminationConfig(
        exit_fn=stop, save_fn=save_and_remember)
    with tempfile.TemporaryDirectory() as empty:
        handler = tf.distribute.experimental.PreemptionCheckpointHandler(
            resolver,
            tf.train.CheckpointManager(tf.train.Checkpoint(), empty, 1),
            termination_config=config)
    try:
        yield handler
    finally:
        # The handler's thread that waits for a peer's signal ends only in
        # its __del__, which that same thread keeps from running; left
        # alone, it fails with "Socket closed" when the chief (which hosts
        # the coordination service) exits first.
        handler._stop_cluster_wise_termination_watcher_thread()


def check_same_checkpoint(strategy, latest, checkpoint_dir):
    """Raises a ValueError on every worker unless all see the same newest
    checkpoint `latest` (a path ending in -<step>, or None) before they
    restore it: a worker that cannot read the chief's run dir would train
    other weights, or trip over mismatched collectives."""
    if not _in_cluster(cluster_resolver(strategy)):
        return
    step = int(latest.rsplit("-", 1)[1]) if latest else -1
    steps = strategy.gather(strategy.run(
        lambda: tf.fill([1], tf.constant(step, tf.int64))), axis=0)
    steps = steps.numpy().tolist()
    if len(set(steps)) > 1:
        seen = ", ".join(f"ckpt-{s}" if s >= 0 else "none" for s in steps)
        raise ValueError(
            f"the workers see different newest checkpoints in "
            f"{checkpoint_dir} ({seen}): `run_dir` must be the same shared "
            "directory (NFS, gs://, ...) on every machine.")


def _cause(error):
    """The line of a collective's error that says what happened (TensorFlow
    puts it after node names and, in graph mode, stack traces)."""
    lines = [line.strip() for line in (error.message or "").splitlines()]
    lines = [re.sub(r"\{\{.*?\}\}\s*", "", line) for line in lines if line]
    for index, line in enumerate(lines):
        if re.search(r"unhealthy|abort|unavailable|socket|connect|deadline",
                     line, re.IGNORECASE):
            return " ".join(lines[index:index + 2])[:400]
    return lines[-1][:400] if lines else type(error).__name__


@contextlib.contextmanager
def reporting_lost_workers(resolver, checkpoint_dir):
    """Turns the error a collective raises when a peer died into
    `WorkerLost`, naming the checkpoint a restart resumes from. Errors of
    a single process pass unchanged."""
    try:
        yield
    except tf.errors.OpError as error:
        if not _in_cluster(resolver):
            raise
        latest = tf.train.latest_checkpoint(checkpoint_dir) or "none yet"
        raise WorkerLost(
            f"{describe(resolver)}: the cluster lost a worker "
            f"({type(error).__name__}: {_cause(error)}). Restart every "
            f"worker with the same command to resume from the last "
            f"checkpoint ({latest}).") from error


def make_strategy(name):
    """The tf.distribute strategy for --strategy; "multi_worker" reads the
    cluster from TF_CONFIG (without it: one worker, all local devices)."""
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if os.environ.get("TF_CONFIG"):
            check_tf_config(os.environ["TF_CONFIG"])
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def logs_need_batch_axis(strategy):
    """Whether Keras reduces the logs of a step as `strategy.reduce(MEAN,
    value, axis=0)`, which needs a batch axis: it does so for
    MultiWorkerMirroredStrategy across several workers (the condition of
    keras/src/backend/tensorflow/trainer.py), and a scalar fails there."""
    return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.extended._in_multi_worker_mode())
