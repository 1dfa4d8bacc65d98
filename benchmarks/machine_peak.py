"""This machine's float32 matmul peak, shared by the benchmark scripts."""

import time

import tensorflow as tf


def matmul_peak_gflops(size=4096, repeats=7):
    """Best of `repeats` timed 4096^3 tf.matmul calls, in GFLOP/s. The best
    (not the median) run, because a shared VM only ever slows it down."""
    a, b = tf.random.normal((size, size)), tf.random.normal((size, size))
    product = tf.function(lambda: tf.matmul(a, b))
    product().numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        product().numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9
