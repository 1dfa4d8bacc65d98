#!/usr/bin/env python3
"""Steps/s of one process against worker processes on this machine with
the same global batch (MultiWorkerMirroredStrategy over localhost ports):
the cost of the collective layer. Prints figures and writes them to --output
(JSON); asserts nothing.

  python benchmarks/multi_worker_speed.py [--workers=2] [--batch_size=8]
      [--steps=40] [--warmup_steps=3] [--output=multi_worker_speed.json]

Every process runs tests/fixed_batch_worker.py (the R=32 model of the
training tests, graph mode, one fixed global batch, so no input pipeline
is timed); the first --warmup_steps (tracing both train-step variants) are
not timed. The processes share this machine's cores, so on one machine N
workers cannot be faster than one process: the ratio shows what the
all-reduce, the coordination and the per-step synchronisation add.
"""

import argparse
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
from bench_record import write_record

from digan_tf.training import distribution

ROOT = pathlib.Path(__file__).parent.parent
WORKER = ROOT / "tests" / "fixed_batch_worker.py"


def seconds_per_step(directory, tf_configs, args):
    """Runs one process per TF_CONFIG (None: a plain process) at once;
    returns the slowest process' seconds per timed step."""
    processes = []
    for index, tf_config in enumerate(tf_configs):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        env.pop("TF_CONFIG", None)
        if tf_config:
            env["TF_CONFIG"] = tf_config
        command = [sys.executable, str(WORKER),
                   f"--output={directory}/{index}.npz",
                   f"--steps={args.steps}",
                   f"--warmup_steps={args.warmup_steps}",
                   f"--batch_size={args.batch_size}"]
        processes.append(subprocess.Popen(command, env=env))
    try:
        for process in processes:
            if process.wait(timeout=1800) != 0:
                sys.exit(f"a process failed: {process.args}")
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    return max(float(np.load(f"{directory}/{index}.npz")["seconds_per_step"])
               for index in range(len(tf_configs)))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup_steps", type=int, default=3)
    parser.add_argument("--output", default="multi_worker_speed.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        single = seconds_per_step(directory, [None], args)
        cluster = seconds_per_step(
            directory, distribution.localhost_tf_configs(args.workers),
            args)
    print(f"global batch {args.batch_size}, R=32 tiny DIGAN, "
          f"{os.cpu_count()} CPU cores, {args.steps - args.warmup_steps} "
          "timed steps")
    print(f"1 process:   {1 / single:6.2f} steps/s ({single * 1000:.0f} "
          "ms/step)")
    print(f"{args.workers} workers:   {1 / cluster:6.2f} steps/s "
          f"({cluster * 1000:.0f} ms/step)")
    print(f"{args.workers} workers / 1 process: {single / cluster:.2f}x the "
          "steps/s")
    write_record(args.output, dict(
        batch_size=args.batch_size, workers=args.workers,
        timed_steps=args.steps - args.warmup_steps,
        one_process_seconds_per_step=single,
        workers_seconds_per_step=cluster,
        workers_over_one_process=single / cluster))


if __name__ == "__main__":
    main()
