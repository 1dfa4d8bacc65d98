#!/usr/bin/env python3
"""Generator throughput against this machine's float32 matmul peak.

Renders one 16-frame 128x128 video at the paper config (R=128, fmaps=1)
eagerly, as a tf.function and with XLA, and prints frames/s and the fraction
of the measured matmul peak that is, counting design.md's 19.8 GFLOP per frame
(design.md section 2), with the spread of the peak's repeats. Prints figures
and writes them to --output (JSON); asserts nothing.

  python benchmarks/generator_speed.py [--frames=16] [--repeats=5]
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import digan_tf  # noqa: E402  (before TensorFlow: oneDNN setting)

# isort: split

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from bench_record import write_record  # noqa: E402
from machine_peak import matmul_peak_rates  # noqa: E402
from machine_peak import peak_figures  # noqa: E402
from machine_peak import peak_text  # noqa: E402

from digan_tf.generation import latents  # noqa: E402

GFLOP_PER_FRAME = 19.8  # design.md section 2, multiply-add = 2 FLOP


def median_seconds(fn, repeats):
    fn()  # warm-up (tracing, compilation)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", default="generator_speed.json")
    args = parser.parse_args()

    rates = matmul_peak_rates()
    peak = max(rates)
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    print(f"float32 matmul peak (4096^3 tf.matmul): {peak_text(rates)}; "
          f"oneDNN={onednn}, {os.cpu_count()} cores")
    tf.keras.utils.set_random_seed(0)
    generator = digan_tf.Generator()
    rng = np.random.default_rng(0)
    z = rng.standard_normal((args.batch, 512)).astype(np.float32)
    z_motion = rng.standard_normal((args.batch, 512)).astype(np.float32)
    t = np.tile(latents.clip_timestamps(args.frames),
                (args.batch, 1))
    frames = args.batch * args.frames
    modes = {
        "eager": generator,
        "tf.function": tf.function(generator),
        "tf.function+XLA": tf.function(generator, jit_compile=True),
    }
    print(f"paper config, {args.batch} x {args.frames} frames of 128x128:")
    figures = dict(peak_figures(rates), onednn=onednn, batch=args.batch,
                   frames=args.frames, repeats=args.repeats,
                   gflop_per_frame=GFLOP_PER_FRAME, modes={})
    for name, fn in modes.items():
        seconds = median_seconds(
            lambda fn=fn: fn(z, z_motion, t).numpy(), args.repeats
        )
        rate = frames / seconds
        fraction = rate * GFLOP_PER_FRAME / peak
        print(f"  {name:16s} {seconds:7.3f} s  {rate:6.2f} frames/s  "
              f"{fraction:6.1%} of peak")
        figures["modes"][name] = dict(median_seconds=seconds,
                                      frames_per_second=rate,
                                      fraction_of_peak=fraction)
    write_record(args.output, figures)


if __name__ == "__main__":
    main()
