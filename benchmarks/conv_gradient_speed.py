#!/usr/bin/env python3
"""Speed of a convolution's forward pass, its input gradient and its kernel
gradient, TensorFlow's (oneDNN's Conv2DBackpropFilter on CPUs) against
`digan_tf.layers.conv2d.filter_gradient` (k*k matmuls, in each of its two
layouts, channels-last and channels-first), and at stride 1 all three by
Winograd's F(2x2, 3x3) (`digan_tf.layers.winograd`; its GFLOP/s count the
direct convolution's multiply-adds), at the discriminators' largest layer
shapes. Prints GFLOP/s and writes them to --output (JSON); asserts
nothing.

  python benchmarks/conv_gradient_speed.py [--repeats=3]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import digan_tf  # noqa: E402,F401  (before TensorFlow: oneDNN setting)

# isort: split

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from bench_record import write_record  # noqa: E402
from machine_peak import matmul_peak_rates  # noqa: E402
from machine_peak import peak_figures  # noqa: E402
from machine_peak import peak_text  # noqa: E402

from digan_tf.layers import winograd  # noqa: E402
from digan_tf.layers.conv2d import filter_gradient  # noqa: E402

# (batch, input size, channels in, channels out, kernel, stride): the 3x3
# layers of the image discriminator's top blocks at R=128 / fmaps 1 (batch
# 4 pairs = 8 frames) and R=64 / fmaps 0.5, the first at stride 1, the
# second (down-sampling, after the blur) at stride 2; then R=128's next
# block and R=64's, 512 channels (the shapes on which the layouts differ
# most), and the blocks after it, around `conv2d.WINOGRAD_MIN_MACS`.
SHAPES = [(8, 130, 256, 256, 3, 1), (8, 66, 256, 256, 3, 1),
          (8, 129, 256, 512, 3, 2), (8, 65, 256, 512, 3, 2),
          (8, 66, 512, 512, 3, 1),
          (8, 34, 512, 512, 3, 1), (8, 33, 512, 512, 3, 2),
          (8, 18, 512, 512, 3, 1), (8, 10, 512, 512, 3, 1)]


def best_seconds(function, repeats):
    function().numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function().numpy()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default="conv_gradient_speed.json")
    args = parser.parse_args()
    rates = matmul_peak_rates()
    print(f"float32 matmul peak: {peak_text(rates)}")
    rng = np.random.default_rng(0)
    figures = dict(peak_figures(rates), layers=[])
    for batch, size, c_in, c_out, k, stride in SHAPES:
        out = (size - k) // stride + 1
        x = tf.constant(rng.normal(size=(batch, size, size, c_in)),
                        tf.float32)
        w = tf.constant(rng.normal(size=(k, k, c_in, c_out)), tf.float32)
        dy = tf.constant(rng.normal(size=(batch, out, out, c_out)),
                         tf.float32)
        strides = [1, stride, stride, 1]
        candidates = {
            "forward": lambda: tf.nn.conv2d(x, w, stride, "VALID"),
            "input gradient": lambda: tf.raw_ops.Conv2DBackpropInput(
                input_sizes=tf.shape(x), filter=w, out_backprop=dy,
                strides=strides, padding="VALID"),
            "kernel gradient, TensorFlow": lambda: (
                tf.raw_ops.Conv2DBackpropFilter(
                    input=x, filter_sizes=tf.shape(w), out_backprop=dy,
                    strides=strides, padding="VALID")),
            "kernel gradient, k*k matmuls": lambda: filter_gradient(
                x, dy, k, stride, channels_first=False),
            "kernel gradient, k*k matmuls, channels-first": (
                lambda: filter_gradient(x, dy, k, stride,
                                        channels_first=True)),
        }
        if k == 3 and stride == 1:
            candidates["forward, Winograd"] = lambda: winograd.conv2d_3x3(
                x, w)
            candidates["input gradient, Winograd"] = (
                lambda: winograd.input_gradient_3x3(w, dy))
            candidates["kernel gradient, Winograd"] = (
                lambda: winograd.filter_gradient_3x3(x, dy))
        gflop = 2 * batch * out * out * c_in * c_out * k * k / 1e9
        layer = dict(batch=batch, input_size=size, channels_in=c_in,
                     channels_out=c_out, kernel=k, stride=stride,
                     gflop=gflop, gflops={})
        for name, function in candidates.items():
            seconds = best_seconds(tf.function(function, autograph=False),
                                   args.repeats)
            layer["gflops"][name] = gflop / seconds
            print(f"{batch}x{size}x{size}x{c_in} -> {c_out}, {k}x{k} stride "
                  f"{stride}: {name:45s} {gflop / seconds:6.1f} GFLOP/s "
                  f"({gflop / seconds / max(rates):.0%} of peak)",
                  flush=True)
        figures["layers"].append(layer)
    write_record(args.output, figures)


if __name__ == "__main__":
    main()
