#!/usr/bin/env python3
"""Forward and gradients of the discriminators' stride-1 blur (before each
down-sampling 3x3 convolution), first order and R1's second order:
`digan_tf.layers.primitives.blur` (its gradient a blur over the
transposed padding, each pass padding inside the depthwise op), against
the same passes after a Pad op with TensorFlow's gradient
(DepthwiseConv2dNativeBackpropInput, the code before) and with the
transposed blur, in float32 and bfloat16, interleaved round by round.
Prints milliseconds and ratios, writes them to --output (JSON); asserts
nothing.

  python benchmarks/blur_gradient_speed.py [--rounds=7]
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


def padded_blur(x, padding):
    """The blur's two separable depthwise passes after a Pad op, with
    TensorFlow's own gradients: the code before."""
    taps = tf.constant(np.array([1, 3, 3, 1]) / 8, x.dtype)
    column = tf.tile(tf.reshape(taps, (4, 1, 1, 1)), (1, 1, x.shape[-1], 1))
    x = tf.pad(x, [[0, 0], [padding, padding], [padding, padding], [0, 0]])
    x = tf.nn.depthwise_conv2d(x, column, [1, 1, 1, 1], "VALID")
    return tf.nn.depthwise_conv2d(x, tf.reshape(column, (1, 4, -1, 1)),
                                  [1, 1, 1, 1], "VALID")


def padded_transposed_blur(x, padding):
    """`padded_blur` whose gradient is itself over the transposed padding:
    the Pad op's cost apart from the explicit padding's."""

    @tf.custom_gradient
    def blurred(x):
        return padded_blur(x, padding), (
            lambda upstream: padded_transposed_blur(upstream, 3 - padding))

    return blurred(x)


# The code before first: the others' times are ratios to its.
CANDIDATES = {"TensorFlow's gradient after a Pad op": padded_blur,
              "transposed blur after a Pad op": padded_transposed_blur,
              "transposed blur, explicit padding": blur}


def derivatives(function, order):
    """A tf.function of the input gradient of sum(weights * y**2) for the
    blurred input y, and for order 2 also the gradient of that gradient's
    square sum (what R1 differentiates)."""

    @tf.function
    def run(x, weights):
        with tf.GradientTape() as outer:
            outer.watch(x)
            with tf.GradientTape() as inner:
                inner.watch(x)
                y = tf.cast(function(x, PADDING), tf.float32)
                objective = tf.reduce_sum(weights * tf.square(y))
            gradient = inner.gradient(objective, x)
            if order == 1:
                return y, gradient
            penalty = tf.reduce_sum(tf.square(tf.cast(gradient, tf.float32)))
        return gradient, outer.gradient(penalty, x)

    return run


def seconds(function, *args):
    start = time.perf_counter()
    for tensor in function(*args):
        tensor.numpy()
    return time.perf_counter() - start


def time_candidates(candidates, order, x, weights, rounds):
    """Times each candidate's derivatives of `order`, interleaved round by
    round; prints and returns their spread, each median over the first
    candidate's and the largest difference from its results."""
    functions = {name: derivatives(blur_function, order)
                 for name, blur_function in candidates.items()}
    results = {name: function(x, weights)  # traces, warms up
               for name, function in functions.items()}
    times = {name: [] for name in functions}
    for _ in range(rounds):
        for name, function in functions.items():
            times[name].append(seconds(function, x, weights))
    baseline, *_ = results.values()
    medians = {name: float(np.median(ts)) for name, ts in times.items()}
    first = next(iter(medians.values()))
    row = dict(dtype=x.dtype.name, shape=list(x.shape), padding=PADDING,
               order=order, milliseconds={
                   name: spread([1000 * t for t in ts])
                   for name, ts in times.items()},
               median_ratio={name: m / first for name, m in medians.items()},
               max_abs_difference={name: max(
                   float(tf.reduce_max(tf.abs(tf.cast(a, tf.float32)
                                              - tf.cast(b, tf.float32))))
                   for a, b in zip(baseline, result))
                   for name, result in results.items()})
    print(f"{x.dtype.name} {'x'.join(map(str, x.shape))}, order {order}: "
          + ", ".join(f"{name} {1000 * m:.1f} ms ({m / first:.3f})"
                      for name, m in medians.items()), flush=True)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--output", default="blur_gradient_speed.json")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    for dtype in (tf.float32, tf.bfloat16):
        for shape in SHAPES:
            x = tf.cast(rng.normal(size=shape), dtype)
            out = (shape[0], shape[1] + 2 * PADDING - 3,
                   shape[2] + 2 * PADDING - 3, shape[3])
            weights = tf.constant(rng.uniform(0.5, 1.5, size=out), tf.float32)
            for order in (1, 2):
                rows.append(time_candidates(CANDIDATES, order, x, weights,
                                            args.rounds))
    write_record(args.output, dict(rounds=args.rounds, timings=rows))


if __name__ == "__main__":
    main()
