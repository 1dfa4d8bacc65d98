#!/usr/bin/env python3
"""I3D feature extraction speed: clips/s of the FVD embedder
(reference preprocessing + I3D, uint8 clips in, 400 features out) as a
tf.function and with XLA, against this machine's float32 matmul peak.
FLOPs are those the traced graph executes (graph_flops.py). Prints
figures (with the spread of the peak's repeats) and writes them to --output
(JSON); asserts nothing.

  python benchmarks/i3d_speed.py [--batch=8] [--frames=16] [--repeats=3]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import digan_tf  # noqa: E402,F401  (before TensorFlow: oneDNN setting)

# isort: split

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from bench_record import write_record  # noqa: E402
from generator_speed import median_seconds  # noqa: E402
from graph_flops import executed_gflop  # noqa: E402
from machine_peak import matmul_peak_rates  # noqa: E402
from machine_peak import peak_figures  # noqa: E402
from machine_peak import peak_text  # noqa: E402

from digan_tf.evaluation import features  # noqa: E402
from digan_tf.models.i3d import I3D  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--resolution", type=int, default=128,
                        help="frame size of the uint8 input clips")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--modes", default="graph,xla")
    parser.add_argument("--output", default="i3d_speed.json")
    args = parser.parse_args()

    rates = matmul_peak_rates()
    peak = max(rates)
    print(f"float32 matmul peak: {peak_text(rates)}, {os.cpu_count()} cores")
    figures = dict(peak_figures(rates), batch=args.batch, frames=args.frames,
                   resolution=args.resolution, repeats=args.repeats, modes={})
    i3d = I3D().randomize(0)
    clips = tf.constant(np.random.default_rng(0).integers(
        0, 256, (args.batch, args.frames, args.resolution, args.resolution,
                 3), dtype=np.uint8))
    gflop = None
    for mode in args.modes.split(","):
        embed = tf.function(lambda c: i3d(features.preprocess(c)),
                            jit_compile=mode == "xla")
        if gflop is None:
            gflop = executed_gflop(embed, clips) / args.batch
            print(f"{gflop:.1f} GFLOP per {args.frames}-frame clip at 224")
            figures["gflop_per_clip"] = gflop
        seconds = median_seconds(lambda: embed(clips).numpy(), args.repeats)
        rate = args.batch / seconds
        print(f"{mode:6s} batch {args.batch}: {rate:.2f} clips/s, "
              f"{gflop * rate:.0f} GFLOP/s ({gflop * rate / peak:.0%} of "
              f"peak); 2048 clips in {2048 / rate / 60:.1f} min")
        figures["modes"][mode] = dict(
            clips_per_second=rate, gflop_per_second=gflop * rate,
            fraction_of_peak=gflop * rate / peak,
            minutes_per_2048_clips=2048 / rate / 60)
    write_record(args.output, figures)


if __name__ == "__main__":
    main()
