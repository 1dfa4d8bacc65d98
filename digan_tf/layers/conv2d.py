"""VALID 2-D convolution (NHWC) whose weight gradient runs as matmuls on
CPUs.

TensorFlow's kernel for a convolution's weight gradient on CPUs (oneDNN's
Conv2DBackpropFilter) runs at about a quarter of the forward convolution's
rate on AVX2 machines: 33 against 118 GFLOP/s for a 3x3 layer of 256
channels at 128x128 (`benchmarks/conv_gradient_speed.py`), and it was the
largest op of a training iteration at R=128 (46% of op time). The same
gradient is k*k matmuls, one per kernel tap, of the input window that tap
sees with the output gradient, which run near the matmul peak. The input
gradient stays TensorFlow's (as fast as the forward), and so do second
derivatives (the R1 penalty differentiates the input gradient).
"""

import functools

import tensorflow as tf


@functools.cache
def _on_cpu_only():
    """No GPU: cuDNN's weight gradient is fast, and there this is not."""
    return not tf.config.list_logical_devices("GPU")


def filter_gradient(inputs, output_gradient, kernel_size, stride):
    """The gradient [k, k, C_in, C_out] of a VALID convolution's kernel,
    from its `inputs` [B, H, W, C_in] and `output_gradient` [B, Ho, Wo,
    C_out]: for tap (i, j), the pixels (i + stride * y, j + stride * x)
    of the input times the output gradient at (y, x), summed over the
    batch and positions."""
    shape = tf.shape(output_gradient)
    rows = stride * (shape[1] - 1) + 1
    columns = stride * (shape[2] - 1) + 1
    flat_gradient = tf.reshape(output_gradient,
                               (-1, output_gradient.shape[-1]))
    taps = []
    for i in range(kernel_size):
        for j in range(kernel_size):
            window = inputs[:, i:i + rows:stride, j:j + columns:stride, :]
            taps.append(tf.matmul(tf.reshape(window, (-1, inputs.shape[-1])),
                                  flat_gradient, transpose_a=True))
    return tf.reshape(tf.stack(taps), (kernel_size, kernel_size,
                                       inputs.shape[-1],
                                       output_gradient.shape[-1]))


def conv2d_valid(inputs, kernel, stride=1):
    """`tf.nn.conv2d(inputs, kernel, stride, "VALID")` for a square
    `kernel` [k, k, C_in, C_out]; on CPU-only machines its kernel gradient
    is `filter_gradient` (the same values, up to float rounding)."""
    if not _on_cpu_only():
        return tf.nn.conv2d(inputs, kernel, stride, "VALID")

    @tf.custom_gradient
    def convolution(inputs, kernel):
        def gradient(output_gradient):
            input_gradient = tf.raw_ops.Conv2DBackpropInput(
                input_sizes=tf.shape(inputs), filter=kernel,
                out_backprop=output_gradient, strides=[1, stride, stride, 1],
                padding="VALID")
            return input_gradient, filter_gradient(
                inputs, output_gradient, kernel.shape[0], stride)

        return tf.nn.conv2d(inputs, kernel, stride, "VALID"), gradient

    return convolution(inputs, kernel)
