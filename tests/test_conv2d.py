"""The convolution whose kernel gradient runs as matmuls gives TensorFlow's
own convolution's values and first and second derivatives."""

import numpy as np
import pytest
import tensorflow as tf

from digan_tf.layers import conv2d
from digan_tf.layers import primitives


def derivatives(convolve, x, kernel, weights):
    """Output, first derivatives (input, kernel) of sum(weights * out^2),
    and the kernel and input derivatives of an R1-like penalty |d/dx|^2
    (the square makes d/dx depend on both)."""
    with tf.GradientTape(persistent=True) as outer:
        outer.watch([x, kernel])
        with tf.GradientTape(persistent=True) as inner:
            inner.watch([x, kernel])
            out = convolve(x, kernel)
            objective = tf.reduce_sum(weights * tf.square(out))
        dx, dkernel = inner.gradient(objective, [x, kernel])
        penalty = tf.reduce_sum(tf.square(dx))
    return [out, dx, dkernel, *outer.gradient(penalty, [kernel, x])]


@pytest.fixture
def matmuls_at_stride_1(monkeypatch):
    """Large stride-1 layers take the matmul kernel gradient on any CPU (on
    AMX CPUs they keep oneDNN's)."""
    monkeypatch.setattr(conv2d, "onednn_stride_1_gradient_is_fast",
                        lambda: False)


@pytest.fixture
def direct_convolutions():
    """No layer traced in the test convolves by Winograd, whose kernel
    gradient takes the place of the taps' matmuls, whichever this CPU
    would pick."""
    with conv2d.direct_convolutions():
        yield


@pytest.fixture
def matmul_gradients(matmuls_at_stride_1, monkeypatch):
    """Every layer takes the matmul kernel gradient, small or not, on any
    CPU (the layers of these tests are small)."""
    monkeypatch.setattr(conv2d, "MATMUL_GRADIENT_MIN_MACS", 0)


@pytest.fixture(params=[False, True], ids=["channels_last",
                                           "channels_first"])
def tap_layout(request, monkeypatch):
    """Both layouts of the taps' matmuls, whichever this CPU would pick."""
    monkeypatch.setattr(conv2d, "channels_first_taps_are_fast",
                        lambda: request.param)
    return request.param


@pytest.fixture(params=[False, True], ids=["direct", "winograd"])
def winograd_convolutions(request, monkeypatch):
    """Stride-1 3x3 layers convolve by Winograd's F(2x2, 3x3) or directly,
    small or not, whichever this CPU would pick."""
    monkeypatch.setattr(conv2d, "winograd_min_macs",
                        lambda: 0 if request.param else None)
    return request.param


@pytest.mark.parametrize(
    "kernel_size,stride,winograd_convolutions",
    [(3, 1, False), (3, 1, True), (3, 2, False), (1, 1, False),
     (1, 2, False)], indirect=["winograd_convolutions"])
@pytest.mark.parametrize("graph", [False, True])
def test_matches_tensorflows_convolution_to_second_order(
        kernel_size, stride, graph, matmul_gradients, tap_layout,
        winograd_convolutions):
    """11x11 inputs: a 3x3 layer's 9x9 output is odd, which Winograd's 2x2
    tiles (stride-1 3x3 layers only) compute one row and column larger and
    cut."""
    rng = np.random.default_rng(kernel_size * 10 + stride)
    x = tf.constant(rng.normal(size=(3, 11, 11, 5)), tf.float32)
    kernel = tf.constant(rng.normal(size=(kernel_size, kernel_size, 5, 4)),
                         tf.float32)
    out_size = (11 - kernel_size) // stride + 1
    weights = tf.constant(rng.normal(size=(3, out_size, out_size, 4)),
                          tf.float32)

    def reference(x, kernel):
        return tf.nn.conv2d(x, kernel, stride, "VALID")

    def ours(x, kernel):
        return conv2d.conv2d_valid(x, kernel, stride)

    run = tf.function(derivatives) if graph else derivatives
    expected = run(reference, x, kernel, weights)
    got = run(ours, x, kernel, weights)
    names = ["output", "input gradient", "kernel gradient",
             "second derivative w.r.t. the kernel",
             "second derivative w.r.t. the input"]
    for name, e, g in zip(names, expected, got):
        scale = np.abs(e.numpy()).max()
        np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=0,
                                   atol=1e-5 * scale, err_msg=name)


@pytest.mark.parametrize("size,stride", [(7, 2), (8, 2), (9, 1), (10, 3)])
@pytest.mark.parametrize("channels_first", [False, True])
def test_filter_gradient_is_the_sum_over_taps_written_out(size, stride,
                                                          channels_first):
    """Inputs that fill the last window exactly (7 at stride 2) and that
    leave rows over (8: the phase images are padded to a multiple of the
    stride)."""
    rng = np.random.default_rng(size)
    x = rng.normal(size=(2, size, size, 3))
    out = (size - 3) // stride + 1
    dy = rng.normal(size=(2, out, out, 2))
    expected = np.zeros((3, 3, 3, 2))
    for i in range(3):
        for j in range(3):
            for y in range(out):
                for c in range(out):
                    expected[i, j] += np.einsum(
                        "bk,bo->ko", x[:, i + stride * y, j + stride * c],
                        dy[:, y, c])
    got = conv2d.filter_gradient(tf.constant(x), tf.constant(dy), 3, stride,
                                 channels_first)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10)


def _kernel_gradient_graph(shape, kernel_shape, stride=1, dtype=tf.float32):
    """The graph of `conv2d_valid`'s kernel gradient."""
    x = tf.zeros(shape, dtype)
    kernel = tf.zeros(kernel_shape, dtype)

    def loss():
        with tf.GradientTape() as tape:
            tape.watch(kernel)
            out = conv2d.conv2d_valid(x, kernel, stride)
        return tape.gradient(out, kernel)
    return tf.function(loss).get_concrete_function().graph


def _kernel_gradient_matmuls(shape, kernel_shape):
    """The MatMul ops of a graph that takes `conv2d_valid`'s kernel
    gradient at stride 1."""
    return [op for op in _kernel_gradient_graph(shape, kernel_shape)
            .get_operations() if op.type == "MatMul"]


def _kernel_gradient_ops(shape, kernel_shape, stride=1, dtype=tf.float32):
    """The op types of a graph that takes `conv2d_valid`'s kernel
    gradient (its forward and input gradient are in it too)."""
    graph = _kernel_gradient_graph(shape, kernel_shape, stride, dtype)
    return [op.type for op in graph.get_operations()]


def test_small_layers_keep_tensorflows_kernel_gradient(matmuls_at_stride_1,
                                                      direct_convolutions):
    """The CPU demo's layers (38 M multiply-adds per sample at most) train
    faster with TensorFlow's kernel gradient; the paper's large ones use
    the matmuls."""
    assert "Conv2DBackpropFilter" in _kernel_gradient_ops((1, 34, 34, 64),
                                                          (3, 3, 64, 64))
    large = _kernel_gradient_ops((1, 66, 66, 256), (3, 3, 256, 256))
    assert "Conv2DBackpropFilter" not in large and "MatMul" in large


def test_strided_layers_take_the_matmuls_too():
    """Over phase images they run at 152 GFLOP/s where oneDNN's strided
    kernel gradient runs at 51 (AVX-512, the R=128 down-sampling layer)."""
    strided = _kernel_gradient_ops((1, 129, 129, 256), (3, 3, 256, 512), 2)
    assert "Conv2DBackpropFilter" not in strided and "MatMul" in strided


def test_amx_cpus_keep_onednns_kernel_gradient_at_stride_1(
        monkeypatch, direct_convolutions):
    """On an Intel Xeon with AMX oneDNN's stride-1 kernel gradient is as
    fast as the matmuls (docs/benchmarks/conv_gradient_speed_intel_amx.json);
    its strided one is not. The choice reads the CPU's flags."""
    flags = {"avx512f", "amx_tile"}
    monkeypatch.setattr(conv2d.cpu_info, "cpu_info",
                        lambda: ("Intel Xeon", frozenset(flags)))
    assert conv2d.onednn_stride_1_gradient_is_fast()
    large = _kernel_gradient_ops((1, 66, 66, 256), (3, 3, 256, 256))
    assert "Conv2DBackpropFilter" in large and "MatMul" not in large
    strided = _kernel_gradient_ops((1, 129, 129, 256), (3, 3, 256, 512), 2)
    assert "Conv2DBackpropFilter" not in strided and "MatMul" in strided
    flags.discard("amx_tile")
    assert not conv2d.onednn_stride_1_gradient_is_fast()
    large = _kernel_gradient_ops((1, 66, 66, 256), (3, 3, 256, 256))
    assert "Conv2DBackpropFilter" not in large and "MatMul" in large


@pytest.mark.parametrize("flags,channels_first", [
    ({"avx2", "fma"}, True),
    ({"avx2", "fma", "avx512f"}, False),
    (set(), False)])
def test_avx2_cpus_multiply_channels_first_taps(monkeypatch, flags,
                                                channels_first,
                                                direct_convolutions):
    """On AVX2 CPUs without AVX-512 the taps multiply [C, positions]
    operands, A B^T (1.3-1.6x as fast on AMD Zen 3 at 512 channels); AVX-512
    CPUs, and CPUs whose flags are unknown, keep the channels-last A^T B they
    were measured with, and so does a 1x1 kernel's single tap everywhere."""
    monkeypatch.setattr(conv2d.cpu_info, "cpu_info",
                        lambda: ("CPU", frozenset(flags)))
    assert conv2d.channels_first_taps_are_fast() == channels_first
    matmuls = _kernel_gradient_matmuls((1, 66, 66, 256), (3, 3, 256, 256))
    assert len(matmuls) == 9
    assert all(op.get_attr("transpose_b") == channels_first
               and op.get_attr("transpose_a") != channels_first
               for op in matmuls)
    one_tap = _kernel_gradient_matmuls((1, 66, 66, 256), (1, 1, 256, 256))
    assert len(one_tap) == 1 and one_tap[0].get_attr("transpose_a")


@pytest.mark.parametrize("vector_bits,vendor,forward_layers,kernel_layers", [
    (256, "AuthenticAMD", [(66, 256), (18, 512)], [(66, 256), (18, 512)]),
    (256, "GenuineIntel", [(66, 256), (18, 512)], [(66, 256), (18, 512)]),
    (512, "AuthenticAMD", [(66, 256)], [(66, 256), (18, 512)]),
    (512, "GenuineIntel", [], []),
    (None, "AuthenticAMD", [], [])])
def test_large_layers_convolve_by_winograd_by_the_cpus_vector_width(
        monkeypatch, matmuls_at_stride_1, vector_bits, vendor,
        forward_layers, kernel_layers):
    """A float32 stride-1 3x3 layer convolves by Winograd, forward and
    input gradient (one batched matmul each), from 300 M multiply-adds per
    sample on CPUs whose vector units are 256 bits wide (AMD Zen 3 and Zen
    4: 1.1-1.3x as fast as oneDNN at 16x16 outputs of 512 channels, 604 M)
    and from 1 G on AMD's 512-bit ones (Zen 5: 0.6-1.7x between runs at
    604 M, 0.8-1.6x at 2.4 G and up). Its kernel gradient (one more batched
    matmul, in place of nine taps) runs by Winograd from 300 M on both
    (Zen 5: 1.1-1.3x as fast as the taps at 604 M). Not on Intel's AVX-512
    Xeons or unknown CPUs; never at 8x8 outputs (151 M), strided, 1x1 or
    bfloat16 layers, or inputs of unknown size."""
    monkeypatch.setattr(conv2d.cpu_info, "vector_unit_bits",
                        lambda: vector_bits)
    monkeypatch.setattr(conv2d.cpu_info, "vendor", lambda: vendor)
    for size, channels in [(66, 256), (18, 512)]:
        ops = _kernel_gradient_ops((1, size, size, channels),
                                   (3, 3, channels, channels))
        forward = (size, channels) in forward_layers
        kernel = (size, channels) in kernel_layers
        assert ops.count("BatchMatMulV2") == 2 * forward + kernel, size
        assert ("Conv2D" in ops) != forward, size
        assert ops.count("MatMul") == (0 if kernel else 9), size
    for shape, kernel_shape, stride, dtype in [
            ((1, 10, 10, 512), (3, 3, 512, 512), 1, tf.float32),
            ((1, 129, 129, 256), (3, 3, 256, 512), 2, tf.float32),
            ((1, 66, 66, 256), (1, 1, 256, 256), 1, tf.float32),
            ((1, 66, 66, 256), (3, 3, 256, 256), 1, tf.bfloat16)]:
        ops = _kernel_gradient_ops(shape, kernel_shape, stride, dtype)
        assert "BatchMatMulV2" not in ops and "Conv2D" in ops, shape
    # Nor inputs whose height and width are known only when run.
    unknown_size = tf.function(lambda x: conv2d.conv2d_valid(
        x, tf.zeros((3, 3, 256, 256)))).get_concrete_function(
            tf.TensorSpec((1, None, None, 256)))
    assert "BatchMatMulV2" not in {
        op.type for op in unknown_size.graph.get_operations()}


def test_custom_gradient_ops_are_named_in_their_layers_scope(
        matmul_gradients, winograd_convolutions):
    """As TensorFlow names registered gradients ('gradient_tape/<scope>/'),
    so that benchmarks/train_profile.py attributes the kernel-gradient
    matmuls, the R1 second derivatives and the activation and clamp
    gradients to their layer, not to the graph's top level."""

    def layer(x, kernel):
        with tf.name_scope("disc/layer"):
            return primitives.clamp(primitives.leaky_relu(
                conv2d.conv2d_valid(x, kernel)), 256.0)

    graph = tf.function(derivatives).get_concrete_function(
        layer, tf.zeros((1, 6, 6, 2)), tf.zeros((3, 3, 2, 2)),
        tf.ones((1, 4, 4, 2))).graph
    gradient_ops = [op.name for op in graph.get_operations() if op.type in (
        "MatMul", "BatchMatMulV2", "Conv2D", "Conv2DBackpropInput",
        "LeakyReluGrad", "SelectV2", "StridedSlice")]
    assert any(name.startswith("gradient_tape/gradient_tape/disc/layer/")
               for name in gradient_ops)
    assert all(name.startswith(("disc/layer/", "gradient_tape/disc/layer/",
                                "gradient_tape/gradient_tape/disc/layer/"))
               for name in gradient_ops), gradient_ops
