#!/usr/bin/env python3
"""Forward and input gradient of the discriminators' stride-1 blur (before
each down-sampling 3x3 convolution): `digan_tf.layers.primitives.blur`,
whose gradient is a blur over the transposed padding, against the same two
depthwise passes differentiated by TensorFlow
(DepthwiseConv2dNativeBackpropInput), in float32 and bfloat16, the two
interleaved round by round. Prints milliseconds and their ratio, writes
them to --output (JSON); asserts nothing.

  python benchmarks/blur_gradient_speed.py [--rounds=9]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import digan_tf  # noqa: E402,F401  (before TensorFlow: oneDNN setting)

# isort: split

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from bench_record import spread  # noqa: E402
from bench_record import write_record  # noqa: E402

from digan_tf.layers.primitives import blur  # noqa: E402

# The blur inputs of the image discriminator's first block (batch 4 pairs
# = 8 frames) at R=128 / fmaps 1 and R=64 / fmaps 0.5; the blur pads by 2.
SHAPES = [(8, 128, 128, 256), (8, 64, 64, 256)]
PADDING = 2


def autodiff_blur(x):
    """The blur's two separable depthwise passes with TensorFlow's own
    gradients: the baseline."""
    taps = tf.constant(np.array([1, 3, 3, 1]) / 8, x.dtype)
    column = tf.tile(tf.reshape(taps, (4, 1, 1, 1)), (1, 1, x.shape[-1], 1))
    x = tf.pad(x, [[0, 0], [PADDING, PADDING], [PADDING, PADDING], [0, 0]])
    x = tf.nn.depthwise_conv2d(x, column, [1, 1, 1, 1], "VALID")
    return tf.nn.depthwise_conv2d(x, tf.reshape(column, (1, 4, -1, 1)),
                                  [1, 1, 1, 1], "VALID")


def forward_and_gradient(function):
    """A tf.function of the blurred input and the input gradient of a
    weighted sum of it."""

    @tf.function
    def run(x, weights):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = function(x)
            objective = tf.reduce_sum(tf.cast(y, tf.float32) * weights)
        return y, tape.gradient(objective, x)

    return run


def seconds(function, *args):
    start = time.perf_counter()
    for tensor in function(*args):
        tensor.numpy()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--output", default="blur_gradient_speed.json")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    candidates = {
        "TensorFlow's gradient": forward_and_gradient(autodiff_blur),
        "transposed blur": forward_and_gradient(
            lambda x: blur(x, PADDING)),
    }
    rows = []
    for dtype in (tf.float32, tf.bfloat16):
        for shape in SHAPES:
            x = tf.cast(rng.normal(size=shape), dtype)
            out = (shape[0], shape[1] + 2 * PADDING - 3,
                   shape[2] + 2 * PADDING - 3, shape[3])
            weights = tf.constant(rng.normal(size=out), tf.float32)
            results = {name: function(x, weights)  # traces, warms up
                       for name, function in candidates.items()}
            times = {name: [] for name in candidates}
            for _ in range(args.rounds):
                for name, function in candidates.items():
                    times[name].append(seconds(function, x, weights))
            baseline, ours = (np.median(times[name]) for name in candidates)
            difference = max(float(tf.reduce_max(tf.abs(
                tf.cast(a, tf.float32) - tf.cast(b, tf.float32))))
                for a, b in zip(*results.values()))
            rows.append(dict(
                dtype=dtype.name, shape=shape, padding=PADDING,
                milliseconds={name: spread([1000 * t for t in ts])
                              for name, ts in times.items()},
                median_ratio=ours / baseline, max_abs_difference=difference))
            print(f"{dtype.name} {'x'.join(map(str, shape))}: "
                  + ", ".join(f"{name} {1000 * np.median(ts):.1f} ms"
                              for name, ts in times.items())
                  + f" (median ratio {ours / baseline:.3f}, values and "
                  f"gradients differ by {difference:.1e} at most)",
                  flush=True)
    write_record(args.output, dict(rounds=args.rounds, shapes=rows))


if __name__ == "__main__":
    main()
