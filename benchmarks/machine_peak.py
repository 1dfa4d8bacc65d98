#!/usr/bin/env python3
"""This machine's float32 matmul peak, shared by the benchmark scripts.

Run alone, it measures the peak with oneDNN off and on, each in a fresh
process (TensorFlow reads TF_ENABLE_ONEDNN_OPTS when it is imported), and
prints the best of the repeats with their spread:

  python benchmarks/machine_peak.py [--size=4096] [--repeats=7]
"""

import argparse
import json
import os
import subprocess
import sys
import time

from bench_record import spread
from bench_record import spread_text
from bench_record import write_record


def _matmul_timer(size, dtype):
    """A callable that times one size^3 tf.matmul in `dtype` (warmed up
    here) and returns its GFLOP/s."""
    import tensorflow as tf  # here: the caller sets oneDNN before importing

    a, b = (tf.cast(tf.random.normal((size, size)), dtype) for _ in "ab")
    product = tf.function(lambda: tf.matmul(a, b))
    product().numpy()

    def rate():
        start = time.perf_counter()
        product().numpy()
        return 2 * size**3 / (time.perf_counter() - start) / 1e9

    return rate


def matmul_peak_rates(size=4096, repeats=7, dtype="float32"):
    """GFLOP/s of each of `repeats` timed size^3 tf.matmul calls in `dtype`
    (after a warm-up), in order: all of them, so that callers can show the
    spread."""
    rate = _matmul_timer(size, dtype)
    return [rate() for _ in range(repeats)]


def matmul_rate_probe(size=4096, dtype="float32"):
    """A callable giving the matmul peak the machine gives now, in GFLOP/s:
    on a shared VM it moves within minutes (train_speed.py probes it
    around each timed call). It times the second of two matmuls: the first
    after other work runs slow (181-192 GFLOP/s after a convolution on
    AMD Zen 4, the next ones 214-220)."""
    rate = _matmul_timer(size, dtype)

    def probe():
        rate()
        return rate()

    return probe


def matmul_peak_gflops(size=4096, repeats=7):
    """Best of `repeats` timed 4096^3 tf.matmul calls, in GFLOP/s. The best
    (not the median) run, because a shared VM only ever slows it down."""
    return max(matmul_peak_rates(size, repeats))


def peak_text(rates):
    """The peak (best of `rates`) and its spread, for a printed line."""
    return (f"{max(rates):.0f} GFLOP/s (best of {len(rates)}; spread "
            f"{spread_text(rates)})")


def peak_figures(rates):
    """The peak, its spread and every repeat, for a record."""
    return dict(matmul_peak_gflops=max(rates),
                matmul_peak_spread_gflops=spread(rates),
                matmul_peak_repeats_gflops=rates)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--output", default="machine_peak.json")
    parser.add_argument("--child", action="store_true",
                        help=argparse.SUPPRESS)  # one measurement, as JSON
    args = parser.parse_args()
    if args.child:
        print(json.dumps(matmul_peak_rates(args.size, args.repeats)))
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    rates = {}
    for name, value in (("off", "0"), ("on", "1")):
        env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=value)
        child = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--child",
             f"--size={args.size}", f"--repeats={args.repeats}"],
            env=env, stdout=subprocess.PIPE, text=True, check=True)
        rates[name] = json.loads(child.stdout.splitlines()[-1])
    off, on = rates["off"], rates["on"]
    print(f"oneDNN off: {max(off):.0f} GFLOP/s, on: {max(on):.0f} GFLOP/s "
          f"(best of {args.repeats}; spread off {spread_text(off)}, on "
          f"{spread_text(on)}); {args.size}^3 float32 tf.matmul, "
          f"{os.cpu_count()} cores")
    write_record(args.output, dict(
        size=args.size, **{f"onednn_{name}": peak_figures(values)
                           for name, values in rates.items()}))


if __name__ == "__main__":
    main()
