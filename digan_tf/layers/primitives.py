"""Small numeric building blocks shared by the DIGAN networks.

All tensors are channels-last. Gains follow StyleGAN2 (design.md sections 2, 3, 7):
`lrelu` is a leaky ReLU with slope 0.2 followed by a gain of sqrt(2)
(`leaky_relu` without the gain).
"""

import functools
import math

import numpy as np
import tensorflow as tf
from keras import ops

SQRT2 = math.sqrt(2.0)

# Normalized separable [1, 3, 3, 1] low-pass filter used before every
# discriminator down-sampling (its 2-D outer product sums to 1).
_BLUR_TAPS = (1.0 / 8.0, 3.0 / 8.0, 3.0 / 8.0, 1.0 / 8.0)


def named_custom_gradient(forward):
    """`tf.custom_gradient`, with the gradient's ops named as TensorFlow
    names registered gradients ('gradient_tape/<scope of the forward>/'),
    so that profiles (`benchmarks/train_profile.py`) attribute them to
    their layer instead of the graph's top level."""

    @functools.wraps(forward)
    @tf.custom_gradient
    def named(*args):
        scope = "/".join(["gradient_tape", tf.get_current_name_scope()]
                         ).rstrip("/") + "/"
        outputs, gradient = forward(*args)

        def named_gradient(*upstream):
            with tf.name_scope(scope):
                return gradient(*upstream)

        return outputs, named_gradient

    return named


def leaky_relu(x):
    """Leaky ReLU with slope 0.2 and no gain: layers that fold lrelu's
    sqrt(2) into their weights call it directly.

    Its gradient reads the output (whose sign is the input's) instead of
    the input, so the input has one reader and TensorFlow's graph
    optimizer can fuse the activation into the convolution and bias that
    feed it, and the pre-activation need not be kept for the backward.
    That read is a constant to a second differentiation (R1): the mask's
    derivative is zero almost everywhere, and without the stop TensorFlow
    would differentiate the activation op itself, reading the
    pre-activation again."""

    slope = 0.2

    @named_custom_gradient
    def activated(x):
        y = tf.nn.leaky_relu(x, alpha=slope)

        def gradient(upstream):
            return tf.raw_ops.LeakyReluGrad(gradients=upstream,
                                            features=tf.stop_gradient(y),
                                            alpha=slope)

        return y, gradient

    return activated(x)


def lrelu(x):
    """Leaky ReLU (slope 0.2) times sqrt(2)."""
    return leaky_relu(x) * SQRT2


def clamp(x, limit):
    """`clip(x, -limit, limit)`, free where nothing is out of the limits.

    The discriminators clamp every convolution's output at 256 (the
    authors' conv_clamp), which an activation seldom reaches; so one
    maximum and one minimum of `x` decide, and when both are within the
    limits, the value and the gradient pass unchanged (`tf.cond`), instead
    of a clip forward and a comparison and a select backward, each a pass
    over the whole activation (an R=64 iteration took 3% less,
    design.md section 12). Otherwise it is one `ClipByValue` op whose
    gradient is one comparison and one select, where TensorFlow's
    `clip_by_value` runs two of each and fills zeros. The gradient passes
    where x is within the limits, bounds included (as TensorFlow's does),
    and is zero where x was clamped. A NaN makes the maximum NaN and takes
    the clip path: NaN out, zero gradient there (as PyTorch's clamp)."""

    @named_custom_gradient
    def clamped(x):
        bound = tf.constant(limit, x.dtype)
        within = tf.logical_and(tf.reduce_max(x) <= bound,
                                tf.reduce_min(x) >= -bound)
        y = tf.cond(within, lambda: tf.identity(x),
                    lambda: tf.raw_ops.ClipByValue(
                        t=x, clip_value_min=-bound, clip_value_max=bound))

        def gradient(upstream):
            return tf.cond(within, lambda: tf.identity(upstream),
                           lambda: tf.where(tf.equal(x, y), upstream,
                                            tf.zeros((), upstream.dtype)))

        return y, gradient

    return clamped(x)


def normalize_2nd_moment(x, eps=1e-8):
    """Scales each row of `x` [B, C] to unit mean square."""
    return x * ops.rsqrt(ops.mean(ops.square(x), axis=1, keepdims=True) + eps)


def upsample_nearest_2x(x):
    """Repeats every pixel of `x` [B, H, W, ...] 2x2.

    Its gradient sums each 2x2 block of the upstream gradient as a 2x2
    average pool times 4 (exact: a power of two): TensorFlow's gradient of
    the broadcast, a sum over two strided axes, took 8x as long (28-36
    against 3.4-4.2 ms at 4x64x64x2x256, the generator's largest
    reduction in the G step, design.md section 12)."""

    @named_custom_gradient
    def upsampled(x):
        shape = ops.shape(x)
        batch, height, width = shape[0], shape[1], shape[2]
        rest = tuple(shape[3:])  # dynamic where unknown (serving signatures)
        y = ops.expand_dims(ops.expand_dims(x, 2), 4)  # [B, H, 1, W, 1, ...]
        y = ops.broadcast_to(y, (batch, height, 2, width, 2) + rest)

        def gradient(upstream):
            grid = tf.shape(upstream)[:3]
            pooled = tf.nn.avg_pool2d(
                tf.reshape(upstream, tf.concat([grid, [-1]], 0)), 2, 2,
                "VALID")
            return tf.reshape(pooled * 4, tf.shape(x))

        return ops.reshape(y, (batch, height * 2, width * 2) + rest), gradient

    return upsampled(x)


def blur(x, padding, stride=1):
    """Pads `x` [B, H, W, C] by `padding` pixels and applies the 4x4 low-pass
    filter outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64, keeping every `stride`-th
    output pixel (upfirdn2d with down=stride, as in design.md section 7).

    Depthwise convolutions: one op with one gradient op, far cheaper to
    train than slicing. Without striding the filter runs as two separable
    passes; with striding as one 4x4 pass (TensorFlow's depthwise kernels
    take only equal strides), which computes only the kept pixels. A
    strided bfloat16 blur runs in float32 between two casts: oneDNN's
    strided bfloat16 depthwise kernel and its gradient took 4-7x as long
    (113 against 26 ms forward and backward at 8x64x64x128, Intel Xeon
    with AMX; a mixed_bfloat16 R=64 iteration 5.23 s instead of 6.58),
    while its stride-1 one is as fast as float32's."""
    if stride > 1 and x.dtype == tf.bfloat16:
        return tf.cast(blur(tf.cast(x, tf.float32), padding, stride),
                       x.dtype)
    if stride == 1:
        return _unstrided_blur(x, padding)
    kernel = _blur_column(x) * ops.reshape(
        _blur_taps(x.dtype), (1, 4, 1, 1))  # [4, 4, C, 1]
    x = ops.pad(x, [[0, 0], [padding, padding], [padding, padding], [0, 0]])
    return ops.depthwise_conv(x, kernel, strides=stride, padding="valid")


def _blur_taps(dtype):
    """The separable taps [1, 3, 3, 1] / 8 as a `dtype` tensor."""
    return ops.convert_to_tensor(np.array(_BLUR_TAPS, np.float32), dtype)


def _blur_column(x):
    """The blur's taps as a [4, 1, C, 1] depthwise kernel for `x`."""
    return ops.tile(ops.reshape(_blur_taps(x.dtype), (4, 1, 1, 1)),
                    (1, 1, x.shape[-1], 1))


def _unstrided_blur(x, padding):
    """`blur` with stride 1, whose gradient is the same blur of the upstream
    gradient with padding 3 - `padding`: the filter is symmetric, so the
    convolution's adjoint is the convolution itself over the transposed
    padding. That runs the forward depthwise kernel instead of
    DepthwiseConv2dNativeBackpropInput and, being a blur again, keeps R1's
    second differentiation on it. Each pass pads inside the depthwise op
    (explicit padding) instead of after a Pad op: a copy fewer. Forward
    and gradients took 3-21% less than with a Pad op and TensorFlow's
    gradient on AMD Zen 4, most at R1's second order (on the Intel Xeon
    with AMX the backprop kernel took 2-3x its forward; design.md section
    12). A negative padding (the gradient of a padding over 3) crops."""

    @named_custom_gradient
    def blurred(x):
        if padding < 0:
            x = x[:, -padding:padding, -padding:padding]
        pad = max(padding, 0)
        column = _blur_column(x)
        y = tf.nn.depthwise_conv2d(x, column, [1, 1, 1, 1],
                                   [[0, 0], [pad, pad], [0, 0], [0, 0]])
        y = tf.nn.depthwise_conv2d(y, tf.reshape(column, (1, 4, -1, 1)),
                                   [1, 1, 1, 1],
                                   [[0, 0], [0, 0], [pad, pad], [0, 0]])
        return y, lambda upstream: _unstrided_blur(upstream, 3 - padding)

    return blurred(x)


def matmul_per_video(x, weight):
    """Applies a per-video weight [B, C_in, C_out] to every position of
    `x` [B, ..., C_in] (all frames and pixels of video b share weight b)."""
    shape = ops.shape(x)
    flat = ops.reshape(x, (shape[0], -1, x.shape[-1]))
    y = ops.matmul(flat, weight)
    return ops.reshape(y, tuple(shape[:-1]) + (weight.shape[-1],))
