#!/usr/bin/env python3
"""Run time of the authors' `nan_to_num` over every trainable variable of
the networks at R=64 / fmaps 0.5 and R=128 / fmaps 1, as `TorchAdam` does it
(`replace_nonfinite`: one finiteness check and a `tf.cond` per variable)
against `nan_to_num` alone (six element-wise passes), in one
tf.function. The cond costs two function graphs per variable to trace;
this prints what it saves per step. Writes --output (JSON); asserts
nothing.

  python benchmarks/nonfinite_replacement_speed.py [--repeats=7]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import digan_tf  # noqa: E402  (before TensorFlow: oneDNN setting)

# isort: split

import tensorflow as tf  # noqa: E402
from bench_record import write_record  # noqa: E402
from conv_gradient_speed import best_seconds  # noqa: E402

from digan_tf.training.optimizers import nan_to_num  # noqa: E402
from digan_tf.training.optimizers import replace_nonfinite  # noqa: E402

CONFIGS = {64: 0.5, 128: 1.0}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--output", default="nonfinite_replacement_speed.json")
    args = parser.parse_args()
    figures = []
    for resolution, fmaps in CONFIGS.items():
        size = dict(resolution=resolution, fmaps=fmaps)
        networks = [digan_tf.Generator(**size),
                    digan_tf.ImageDiscriminator(**size),
                    digan_tf.MotionDiscriminator(**size)]
        gradients = [tf.random.normal(variable.shape) for network in networks
                     for variable in network.trainable_variables]
        row = dict(resolution=resolution, fmaps=fmaps, parameters=sum(
            int(tf.size(g)) for g in gradients), milliseconds={})
        for name, replace in (("cond per variable", replace_nonfinite),
                              ("branch-free nan_to_num", nan_to_num)):
            step = tf.function(lambda: tf.add_n(
                [tf.reduce_sum(replace(g)) for g in gradients]))
            row["milliseconds"][name] = 1000 * best_seconds(step, args.repeats)
        print(f"R={resolution} fmaps {fmaps}, {row['parameters'] / 1e6:.1f} M "
              "parameters: " + ", ".join(
                  f"{name} {ms:.1f} ms" for name, ms in
                  row["milliseconds"].items()), flush=True)
        figures.append(row)
    write_record(args.output, dict(configs=figures))


if __name__ == "__main__":
    main()
