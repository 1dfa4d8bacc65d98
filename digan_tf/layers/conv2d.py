"""VALID 2-D convolution (NHWC) whose weight gradient runs as matmuls on
CPUs.

TensorFlow's kernel for a convolution's weight gradient on CPUs (oneDNN's
Conv2DBackpropFilter) runs at about a fifth of the forward convolution's
rate on AVX2 machines: 29 against 148 GFLOP/s for a 3x3 layer of 256
channels at 128x128 (`benchmarks/conv_gradient_speed.py`), and it was the
largest op of a training iteration at R=128 (46% of op time). The same
gradient is k*k matmuls, one per kernel tap, of the input window that tap
sees with the output gradient, which run at 96 there. The input
gradient stays TensorFlow's (as fast as the forward); its own kernel
derivative, which the R1 penalty needs, is `filter_gradient` too. On an
AVX-512 CPU (AMD Zen 4) oneDNN's kernel runs at 35-64% of the forward's
rate at stride 1 and at a quarter at R=128's down-sampling layer (stride
2), where the matmuls over phase images (`_phase_images`) run at four
fifths of it (`docs/benchmarks/conv_gradient_speed_avx512.json`). On an
Intel Xeon with AMX, though, oneDNN's stride-1 kernel gradient is as fast
as the matmuls or faster (138 against 122 GFLOP/s at 66x66,
`docs/benchmarks/conv_gradient_speed_intel_amx.json`; an R=64 iteration
took 4-6% less with it), so there only strided layers take the matmuls.
On AVX2 CPUs without AVX-512 the matmuls multiply channels-first operands
(`channels_first_taps_are_fast`): a D step at R=64 took 9% less on AMD
Zen 3. There, and on Zen 4 and Zen 5, large stride-1 3x3 layers also
convolve by Winograd (`winograd_min_macs`, `layers/winograd.py`), forward
and input gradient: an R=64 iteration took 12%, 10% and 7-9% less; and
their kernel gradient is Winograd's too
(`WINOGRAD_KERNEL_GRADIENT_MIN_MACS`): 5-7% less again on Zen 5.
"""

import contextlib
import functools

import tensorflow as tf

from digan_tf.layers import winograd
from digan_tf.layers.primitives import named_custom_gradient
from digan_tf.utils import cpu_info

# Multiply-adds per sample from which a layer's kernel gradient runs as
# matmuls. Below it the k*k matmuls, slices and their tracing cost more
# than they save: the CPU demo (32x32, 64 channels, 38 M per sample) trained
# at 12.5 img/s with them and 14.9 without, and traced 30 s longer.
MATMUL_GRADIENT_MIN_MACS = 100_000_000

# Multiply-adds per sample from which a stride-1 3x3 layer's convolutions
# run as Winograd's F(2x2, 3x3), by the width of the CPU's vector units in
# bits (`winograd_min_macs`; at least MATMUL_GRADIENT_MIN_MACS: it lives in
# that path's custom gradient). On 256-bit units its forward and input
# gradient ran 1.1x (AMD Zen 3) and 1.2-1.3x (Zen 4) as fast as oneDNN's at
# 16x16 outputs of 512 channels (604 M), 1.2-1.7x at larger layers, and
# 0.6-0.8x at 8x8 (151 M). On Zen 5's 512-bit units 1.1-1.6x at 512
# channels of 2.4-9.7 G, 0.8-1.3x at 256 channels, 0.6-1.7x at 604 M in
# two runs, 0.3-0.6x at 151 M; its R=64 phases, timed alternately, ran
# 7-10% faster from 1 G and 3-5% from 300 M (docs/design.md section 12).
WINOGRAD_MIN_MACS = {256: 300_000_000, 512: 1_000_000_000}

# Multiply-adds per sample from which such a layer's kernel gradient, first
# and second order, runs as Winograd's too (`winograd.filter_gradient_3x3`)
# on CPUs that take Winograd at all, where the forward's threshold is
# higher. On Zen 5 it ran 1.1-1.3x as fast as the k*k matmuls at 16x16
# outputs of 512 channels (604 M), 1.2-1.7x at 2.4-9.7 G, and 0.6-1.0x at
# 151 M (docs/design.md section 12).
WINOGRAD_KERNEL_GRADIENT_MIN_MACS = 300_000_000


@functools.cache
def _on_cpu_only():
    """No GPU: cuDNN's weight gradient is fast, and there this is not."""
    return not tf.config.list_logical_devices("GPU")


def onednn_stride_1_gradient_is_fast():
    """Whether this CPU runs oneDNN's stride-1 kernel gradient as fast as
    the matmuls: measured so on an Intel Xeon with AMX (family 6 model
    167), where its oneDNN kernels differ from AVX-512 AMD's; AMX (the
    `amx_tile` flag) marks that generation of Xeons."""
    return "amx_tile" in cpu_info.cpu_info()[1]


def _matmul_gradient_pays(inputs, kernel, stride):
    """Whether `conv2d_valid` should compute this layer's kernel gradient
    as matmuls: on CPUs, for layers large enough (the input size is static
    in every DIGAN network), strided ones only where oneDNN's stride-1
    kernel gradient is fast."""
    if not _on_cpu_only():
        return False
    if stride == 1 and onednn_stride_1_gradient_is_fast():
        return False
    size = inputs.shape[1]
    if size is None:
        return True
    return (_multiply_adds_per_sample(size, size, kernel, stride)
            >= MATMUL_GRADIENT_MIN_MACS)


def _multiply_adds_per_sample(height, width, kernel, stride):
    """A VALID convolution's multiply-adds per sample over an input of
    `height` x `width`, which the rules below compare with their
    thresholds."""
    size = kernel.shape[0]
    return (((height - size) // stride + 1) * ((width - size) // stride + 1)
            * size * size * kernel.shape[2] * kernel.shape[3])


def channels_first_taps_are_fast():
    """Whether `filter_gradient` should multiply channels-first operands:
    on AVX2 CPUs without AVX-512 (measured on AMD Zen 3), oneDNN's matmul
    of two [C, positions] operands, A B^T, runs the long sums over positions
    1.3-1.6x as fast as the channels-last A^T B at 512 channels and as fast
    at 256, worth the two transposes it costs
    (`benchmarks/conv_gradient_speed.py`). AVX-512 and AMX CPUs keep the
    channels-last layout they were measured with."""
    flags = cpu_info.cpu_info()[1]
    return "avx2" in flags and "avx512f" not in flags


def winograd_min_macs():
    """Multiply-adds per sample from which large stride-1 3x3 layers
    convolve by Winograd's F(2x2, 3x3) (`layers/winograd.py`) on this CPU;
    None: never. Its 2.25x fewer multiply-adds outweigh its transforms'
    memory traffic from a smaller layer where the vector units are
    narrower (WINOGRAD_MIN_MACS by `cpu_info.vector_unit_bits`), measured
    on AMD's Zen 3, Zen 4 and Zen 5 (`benchmarks/conv_gradient_speed.py`).
    Intel's AVX-512 Xeons keep oneDNN's direct convolutions: there a first
    Winograd gained on the 512-channel layers only and lost on 256-channel
    ones of the same size (docs/design.md section 12)."""
    bits = cpu_info.vector_unit_bits()
    if bits == 512 and cpu_info.vendor() != "AuthenticAMD":
        return None
    return WINOGRAD_MIN_MACS.get(bits)


_direct_only = False


@contextlib.contextmanager
def direct_convolutions():
    """Layers traced inside convolve directly, never by Winograd: for
    counting the model's multiply-adds, which the benchmarks' FLOP floors
    are (`benchmarks/graph_flops.py`), where Winograd runs fewer."""
    global _direct_only
    _direct_only, before = True, _direct_only
    try:
        yield
    finally:
        _direct_only = before


def _winograd_pays(inputs, kernel, stride, kernel_gradient=False):
    """Whether this layer's forward convolution and input gradient (and
    R1's convolutions of them) run as `winograd.conv2d_3x3`: float32
    stride-1 3x3 layers of at least `winograd_min_macs` multiply-adds per
    sample, of static height and width (its tiles are laid out at trace
    time); with `kernel_gradient`, whether its kernel gradient runs as
    `winograd.filter_gradient_3x3`, from the lower of that and
    WINOGRAD_KERNEL_GRADIENT_MIN_MACS. Called only where
    `_matmul_gradient_pays`, so on CPU-only machines."""
    if (stride != 1 or kernel.shape[0] != 3 or inputs.dtype != tf.float32
            or None in inputs.shape[1:3] or _direct_only):
        return False
    min_macs = winograd_min_macs()
    if min_macs is None:
        return False
    if kernel_gradient:
        min_macs = min(min_macs, WINOGRAD_KERNEL_GRADIENT_MIN_MACS)
    return (_multiply_adds_per_sample(*inputs.shape[1:3], kernel, stride)
            >= min_macs)


def _phase_images(inputs, stride, channels_first):
    """{(p, q): inputs[:, p::stride, q::stride, :]}, laid out [B, H, W, C]
    or, `channels_first`, [C, B, H, W], from one reshape and transpose of
    the input (padded to a multiple of the stride). The strided windows of
    a strided layer's kernel gradient are then unit-stride windows of
    these: TensorFlow's StridedSlice with a stride copies at about half the
    rate, which made the matmuls slower than oneDNN's kernel gradient
    (`benchmarks/conv_gradient_speed.py`)."""
    if stride == 1:
        return {(0, 0): tf.transpose(inputs, (3, 0, 1, 2)) if channels_first
                else inputs}
    shape = tf.shape(inputs)
    padded = tf.pad(inputs, [[0, 0], [0, -shape[1] % stride],
                             [0, -shape[2] % stride], [0, 0]])
    shape = tf.shape(padded)
    phases = tf.transpose(tf.reshape(padded, (
        shape[0], shape[1] // stride, stride, shape[2] // stride, stride,
        inputs.shape[-1])), (2, 4, 5, 0, 1, 3) if channels_first
        else (2, 4, 0, 1, 3, 5))
    return {(p, q): phases[p, q] for p in range(stride)
            for q in range(stride)}


def filter_gradient(inputs, output_gradient, kernel_size, stride,
                    channels_first=None):
    """The gradient [k, k, C_in, C_out] of a VALID convolution's kernel,
    from its `inputs` [B, H, W, C_in] and `output_gradient` [B, Ho, Wo,
    C_out]: for tap (i, j), the pixels (i + stride * y, j + stride * x)
    of the input times the output gradient at (y, x), summed over the
    batch and positions. Those pixels are the unit-stride window at
    (i // stride, j // stride) of the phase image (i % stride, j %
    stride). `channels_first` transposes the input and the output
    gradient to [C, B, H, W] once and multiplies windows [C_in, positions]
    by the gradient [C_out, positions] transposed; otherwise windows
    [positions, C_in] transposed by the gradient [positions, C_out]. The
    values are the same. By default it is `channels_first_taps_are_fast`
    for kernels of several taps: a 1x1 kernel's single matmul does not
    repay the transposes (64-75 GFLOP/s against 78-88 at 256 -> 512
    channels, 32x32 and 64x64, on AMD Zen 3)."""
    if channels_first is None:
        channels_first = kernel_size > 1 and channels_first_taps_are_fast()
    c_in, c_out = inputs.shape[-1], output_gradient.shape[-1]
    shape = tf.shape(output_gradient)
    if channels_first:
        gradient = tf.reshape(tf.transpose(output_gradient, (3, 0, 1, 2)),
                              (c_out, -1))

        def tap(phase, row, column):
            window = phase[:, :, row:row + shape[1], column:column + shape[2]]
            return tf.matmul(tf.reshape(window, (c_in, -1)), gradient,
                             transpose_b=True)
    else:
        gradient = tf.reshape(output_gradient, (-1, c_out))

        def tap(phase, row, column):
            window = phase[:, row:row + shape[1], column:column + shape[2], :]
            return tf.matmul(tf.reshape(window, (-1, c_in)), gradient,
                             transpose_a=True)

    phases = _phase_images(inputs, stride, channels_first)
    taps = [tap(phases[i % stride, j % stride], i // stride, j // stride)
            for i in range(kernel_size) for j in range(kernel_size)]
    return tf.reshape(tf.stack(taps), (kernel_size, kernel_size, c_in,
                                       c_out))


def _kernel_gradient(inputs, output_gradient, kernel_size, stride,
                     by_winograd):
    """The kernel gradient, by `winograd.filter_gradient_3x3` or
    `filter_gradient`."""
    if by_winograd:
        return winograd.filter_gradient_3x3(inputs, output_gradient)
    return filter_gradient(inputs, output_gradient, kernel_size, stride)


def _convolution(inputs, kernel, stride, by_winograd):
    """The VALID convolution, by `winograd.conv2d_3x3` or TensorFlow's."""
    if by_winograd:
        return winograd.conv2d_3x3(inputs, kernel)
    return tf.nn.conv2d(inputs, kernel, stride, "VALID")


def _input_gradient(input_shape, kernel, output_gradient, stride,
                    by_winograd, kernel_gradient_by_winograd):
    """The convolution's input gradient (TensorFlow's kernel, as fast as
    the forward, or Winograd's), differentiable again with the kernel part as
    `_kernel_gradient`: R1 differentiates it w.r.t. the kernel, where
    TensorFlow's registered gradient is Conv2DBackpropFilter again."""

    @named_custom_gradient
    def input_gradient(kernel, output_gradient):
        def gradient(upstream):
            return (_kernel_gradient(upstream, output_gradient,
                                     kernel.shape[0], stride,
                                     kernel_gradient_by_winograd),
                    _convolution(upstream, kernel, stride, by_winograd))

        if by_winograd:
            return winograd.input_gradient_3x3(kernel, output_gradient), \
                gradient
        return tf.raw_ops.Conv2DBackpropInput(
            input_sizes=input_shape, filter=kernel,
            out_backprop=output_gradient, strides=[1, stride, stride, 1],
            padding="VALID"), gradient

    return input_gradient(kernel, output_gradient)


def conv2d_valid(inputs, kernel, stride=1):
    """`tf.nn.conv2d(inputs, kernel, stride, "VALID")` for a square
    `kernel` [k, k, C_in, C_out]. On CPU-only machines, for layers of at
    least MATMUL_GRADIENT_MIN_MACS multiply-adds per sample, its kernel
    gradient, first and second order, is `filter_gradient`, and where
    `_winograd_pays` its convolutions, and from a lower size its kernel
    gradient, are Winograd's (the same values, up to float rounding)."""
    if not _matmul_gradient_pays(inputs, kernel, stride):
        return tf.nn.conv2d(inputs, kernel, stride, "VALID")
    by_winograd = _winograd_pays(inputs, kernel, stride)
    kernel_gradient_by_winograd = _winograd_pays(inputs, kernel, stride,
                                                 kernel_gradient=True)

    @named_custom_gradient
    def convolution(inputs, kernel):
        def gradient(output_gradient):
            return (_input_gradient(tf.shape(inputs), kernel,
                                    output_gradient, stride, by_winograd,
                                    kernel_gradient_by_winograd),
                    _kernel_gradient(inputs, output_gradient,
                                     kernel.shape[0], stride,
                                     kernel_gradient_by_winograd))

        return _convolution(inputs, kernel, stride, by_winograd), gradient

    return convolution(inputs, kernel)
