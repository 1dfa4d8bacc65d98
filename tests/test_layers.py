import math

import numpy as np
import pytest
import tensorflow as tf

from digan_tf.layers import primitives as digan_ops
from digan_tf.layers.coordinate_view import coordinate_grid
from digan_tf.layers.discriminator_block import DiscriminatorBlock
from digan_tf.layers.equalized_conv2d import EqualizedConv2D
from digan_tf.layers.equalized_dense import EqualizedDense
from digan_tf.layers.fmm_layer import FMMLayer
from digan_tf.layers.mapping_network import MappingNetwork
from digan_tf.layers.motion_coordinate_embedding import MotionCoordinateEmbedding
from digan_tf.layers.motion_coordinate_embedding import project_embedding
from digan_tf.layers.synthesis_block import SynthesisBlock

RNG = np.random.default_rng(0)


def _normal(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("lr_multiplier", [1.0, 0.01])
def test_equalized_dense_keeps_unit_variance(lr_multiplier):
    layer = EqualizedDense(512, lr_multiplier=lr_multiplier)
    y = layer(_normal(256, 512)).numpy()
    assert y.std() == pytest.approx(1.0, abs=0.05)


def test_equalized_conv_keeps_unit_variance():
    y = EqualizedConv2D(256, 3)(_normal(4, 16, 16, 128)).numpy()
    assert y[:, 1:-1, 1:-1].std() == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("padding,stride,depthwise_ops", [
    (1, 2, {"DepthwiseConv2dNative": tf.float32,
            "DepthwiseConv2dNativeBackpropInput": tf.float32}),
    (2, 1, {"DepthwiseConv2dNative": tf.bfloat16})])
def test_bfloat16_blur_is_strided_in_float32(padding, stride, depthwise_ops):
    """A strided bfloat16 blur (oneDNN's bfloat16 kernel for it is 4-7x
    slower) runs its depthwise convolutions and their gradients in
    float32, and gives bfloat16 values and gradients close to float32's;
    the unstrided one stays in bfloat16, its gradient a forward blur."""
    x = tf.constant(_normal(2, 8, 8, 3))

    @tf.function
    def blurred_and_gradient(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = digan_ops.blur(x, padding=padding, stride=stride)
            objective = tf.reduce_sum(tf.cast(y, tf.float32) ** 2)
        return y, tape.gradient(objective, x)

    low = tf.cast(x, tf.bfloat16)
    y, gradient = blurred_and_gradient(low)
    assert y.dtype == gradient.dtype == tf.bfloat16
    graph = blurred_and_gradient.get_concrete_function(low).graph
    # (the filter's gradient, of a constant, is pruned when it runs)
    depthwise = {op.type: op.get_attr("T") for op in graph.get_operations()
                 if op.type.startswith("DepthwiseConv2dNative")
                 and op.type != "DepthwiseConv2dNativeBackpropFilter"}
    assert depthwise == depthwise_ops
    expected_y, expected_gradient = blurred_and_gradient(
        tf.cast(low, tf.float32))
    np.testing.assert_allclose(tf.cast(y, tf.float32), expected_y,
                               rtol=2e-2, atol=2e-2)
    np.testing.assert_allclose(tf.cast(gradient, tf.float32),
                               expected_gradient, rtol=3e-2, atol=3e-2)


def test_lrelu_has_slope_and_gain():
    x = np.array([-1.0, 2.0], np.float32)
    np.testing.assert_allclose(
        digan_ops.lrelu(x).numpy(), [-0.2 * math.sqrt(2), 2 * math.sqrt(2)],
        rtol=1e-6,
    )


@pytest.mark.parametrize("padding,stride", [(1, 2), (2, 1)])
def test_blur_matches_direct_convolution(padding, stride):
    x = _normal(1, 8, 8, 2)
    kernel = np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64.0
    padded = np.pad(x, [(0, 0), (padding, padding), (padding, padding),
                        (0, 0)])
    size = (8 + 2 * padding - 4) // stride + 1
    expected = np.zeros((1, size, size, 2), np.float32)
    for i in range(size):
        for j in range(size):
            window = padded[0, stride * i: stride * i + 4,
                            stride * j: stride * j + 4]
            expected[0, i, j] = np.tensordot(kernel, window, axes=2)
    got = digan_ops.blur(x, padding=padding, stride=stride).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6)


def _value_gradient_and_r1_term(op, x, weights, scale, graph):
    """op(scale * x), its input gradient for a weighted square loss, and
    the R1-like derivative of that gradient's square w.r.t. `scale`."""

    def derivatives():
        with tf.GradientTape() as outer:
            outer.watch(scale)
            with tf.GradientTape() as inner:
                inner.watch(x)
                y = op(scale * x)
                objective = tf.reduce_sum(weights * tf.square(y))
            dx = inner.gradient(objective, x)
            penalty = tf.reduce_sum(tf.square(dx))
        return y, dx, outer.gradient(penalty, scale)

    return tf.function(derivatives)() if graph else derivatives()


def _assert_same_derivatives(expected, got, rtol=1e-6, atol=0.0):
    for name, e, g in zip(["value", "gradient", "second order"], expected,
                          got):
        np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=rtol,
                                   atol=atol, err_msg=name)


def _direct_blur(x, padding):
    """The stride-1 blur as one 4x4 depthwise convolution, differentiated by
    TensorFlow (the reference for `blur`'s own gradient)."""
    taps = np.array([1.0, 3.0, 3.0, 1.0]) / 8.0
    kernel = np.outer(taps, taps)
    kernel = np.tile(kernel[:, :, None, None], (1, 1, x.shape[-1], 1))
    padded = tf.pad(x, [[0, 0], [padding, padding], [padding, padding],
                        [0, 0]])
    return tf.nn.depthwise_conv2d(padded, tf.constant(kernel, tf.float32),
                                  [1, 1, 1, 1], "VALID")


@pytest.mark.parametrize("padding,graph", [(0, False), (1, False),
                                           (2, False), (2, True), (3, True),
                                           (4, False)])
def test_unstrided_blur_matches_autodiff_to_second_order(padding, graph):
    """The stride-1 blur, whose gradient is a blur with the transposed
    padding: values, input gradient and the R1-like derivative of that
    gradient's square, against TensorFlow's derivatives of a direct 4x4
    depthwise convolution (at padding 4 the gradient crops by 1). The
    input is not square, so a transposed height and width would not even
    fit."""
    x = tf.constant(_normal(2, 7, 9, 3))
    size = [n + 2 * padding - 3 for n in (7, 9)]
    weights = tf.constant(RNG.uniform(0.5, 1.5, (2, *size, 3)), tf.float32)
    scale = tf.constant(1.3)
    expected = _value_gradient_and_r1_term(
        lambda v: _direct_blur(v, padding), x, weights, scale, graph)
    got = _value_gradient_and_r1_term(
        lambda v: digan_ops.blur(v, padding), x, weights, scale, graph)
    # (a 4x4 kernel against two 4-tap passes: rounding differs)
    _assert_same_derivatives(expected, got, rtol=1e-5, atol=1e-6)


def _clamp_against_clip_by_value(x, limit, scale, graph):
    """`clamp(scale * x, limit)`'s value, gradient and R1-like derivative
    (for random positive weights), asserted equal to clip_by_value's."""
    weights = tf.constant(RNG.uniform(0.5, 1.5, x.shape[0]), tf.float32)
    expected = _value_gradient_and_r1_term(
        lambda v: tf.clip_by_value(v, -limit, limit), x, weights, scale,
        graph)
    got = _value_gradient_and_r1_term(
        lambda v: digan_ops.clamp(v, limit), x, weights, scale, graph)
    _assert_same_derivatives(expected, got)
    return got


@pytest.mark.parametrize("graph", [False, True])
def test_clamp_matches_clip_by_value_to_second_order(graph):
    """Values, gradient (zero where clamped) and the R1-like derivative
    of the squared input gradient w.r.t. a scale, against TensorFlow's
    clip_by_value."""
    x = tf.constant(np.linspace(-4, 4, 41), tf.float32)  # hits +-2 exactly
    scale = tf.constant(1.3)
    got = _clamp_against_clip_by_value(x, 2.6, scale, graph)
    clamped = np.abs((scale * x).numpy()) > np.float32(2.6)
    assert clamped.sum() >= 18
    assert (got[1].numpy()[clamped] == 0).all()
    assert (got[1].numpy()[~clamped & (x.numpy() != 0)] != 0).all()


@pytest.mark.parametrize("graph", [False, True])
def test_clamp_within_the_limits_passes_value_and_gradients(graph):
    """With nothing beyond the limits (one value on each bound), the
    pass-through path gives clip_by_value's values and derivatives."""
    x = tf.constant(np.r_[np.linspace(-1.9, 1.9, 39), -2.0, 2.0],
                    tf.float32)
    _clamp_against_clip_by_value(x, 2.0, tf.constant(1.0), graph)


def _count_calls(monkeypatch, owner, name):
    calls = []
    original = getattr(owner, name)

    def counted(*args, **kwargs):
        calls.append(name)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


@pytest.mark.parametrize("peak, clips", [(1.5, False), (2.5, True)])
def test_clamp_clips_only_when_a_value_is_beyond_the_limits(monkeypatch,
                                                            peak, clips):
    """The clip and its gradient's comparison run only for an input that
    reaches beyond the limits (eagerly, `tf.cond` runs one branch): the
    pass-through is what makes the clamp free in training."""
    clip_calls = _count_calls(monkeypatch, tf.raw_ops, "ClipByValue")
    equal_calls = _count_calls(monkeypatch, tf, "equal")
    x = tf.constant([-1.0, 0.5, peak])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = digan_ops.clamp(x, 2.0)
    gradient = tape.gradient(y, x)
    assert bool(clip_calls) == clips and bool(equal_calls) == clips
    np.testing.assert_array_equal(y.numpy(), [-1.0, 0.5, min(peak, 2.0)])
    np.testing.assert_array_equal(gradient.numpy(), [1, 1, 0 if clips else 1])


def test_clamp_of_nan_is_nan_with_zero_gradient():
    """A NaN takes the clip path: NaN out, zero gradient there (PyTorch's
    clamp gives the same), the other values clamped or passed as usual."""
    x = tf.constant([np.nan, 3.0, 1.0])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = digan_ops.clamp(x, 2.0)
    np.testing.assert_array_equal(y.numpy(), [np.nan, 2.0, 1.0])
    np.testing.assert_array_equal(tape.gradient(y, x).numpy(), [0, 0, 1])


@pytest.mark.parametrize("graph", [False, True])
def test_leaky_relu_matches_tensorflow_to_second_order(graph):
    """The activation whose gradient reads its output gives TensorFlow's
    leaky ReLU values, gradient and R1-like second derivative, on both
    sides of the kink."""
    x = tf.constant(np.linspace(-3, 3, 40), tf.float32)  # no exact zero
    # Weights of both signs: the upstream gradient's sign is not y's.
    weights = tf.constant(RNG.uniform(-1.5, 1.5, 40), tf.float32)
    scale = tf.constant(0.7)
    expected = _value_gradient_and_r1_term(
        lambda v: tf.nn.leaky_relu(v, alpha=0.2), x, weights, scale, graph)
    got = _value_gradient_and_r1_term(digan_ops.leaky_relu, x, weights,
                                      scale, graph)
    _assert_same_derivatives(expected, got)
    assert got[2].numpy() != 0


def test_leaky_relus_second_order_never_reads_the_pre_activation():
    """An R1 penalty differentiates the activation's gradient again; if
    that reached the activation's own op, TensorFlow's registered gradient
    would read the pre-activation (zeros times its mask, work for
    nothing), and grappler's conv + bias + activation fusion would fail on
    the second reader ('remapper failed: ... missing node')."""
    x = tf.zeros((2, 5))
    weights = tf.ones((2, 5))

    def r1_like(scale):
        return _value_gradient_and_r1_term(
            digan_ops.leaky_relu, x, weights, scale, graph=False)[2]

    graph = tf.function(r1_like).get_concrete_function(
        tf.TensorSpec((), tf.float32)).graph
    activation_grads = [op for op in graph.get_operations()
                        if op.type == "LeakyReluGrad"]
    assert activation_grads
    for op in activation_grads:
        assert op.inputs[1].op.type in ("LeakyRelu", "StopGradient"), (
            op.name, op.inputs[1].op.type)


def test_coordinate_grid_orientation():
    grid = coordinate_grid(4).reshape(4, 4, 2)
    np.testing.assert_allclose(grid[0, :, 0], [-1.0, -0.5, 0.0, 0.5])
    np.testing.assert_allclose(grid[:, 0, 1], [0.5, 0.0, -0.5, -1.0])


def test_fmm_weights_are_demodulated():
    layer = FMMLayer(6, rank=3, in_channels=5, w_dim=4)
    weight = layer.modulated_weight(_normal(2, 4)).numpy()
    np.testing.assert_allclose(
        np.linalg.norm(weight, axis=1), np.ones((2, 6)), rtol=1e-5
    )


def test_projected_embedding_equals_explicit_sin_cos():
    embedding = MotionCoordinateEmbedding(8, num_frequencies=4, w_dim=6,
                                          motion_dim=5)
    w, z_motion, t = _normal(2, 6), _normal(2, 5), np.abs(_normal(2, 3))
    basis, shift = embedding(w, z_motion, t)
    weight = _normal(2, 8, 7)
    got = project_embedding(basis, shift, weight).numpy()  # [B, H, W, T, C]
    angles = np.arctan2(basis[..., :4], basis[..., 4:])  # S mod 2 pi
    phased = angles[:, :, :, None, :] + shift.numpy()[:, None, None]
    explicit = np.concatenate([np.sin(phased), np.cos(phased)], -1)
    expected = np.einsum("bhwtk,bkc->bhwtc", explicit, weight)
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_mapping_network_rejects_no_inputs():
    with pytest.raises(ValueError, match="z_dim.*num_classes"):
        MappingNetwork(z_dim=0, w_dim=8, num_classes=0)


def test_layers_run_under_xla():
    block = SynthesisBlock(64, 8, in_channels=8, num_frequencies=4,
                           w_dim=8, motion_dim=8)
    x, img = _normal(2, 32, 32, 3, 8), _normal(2, 32, 32, 3, 3)
    args = (x, img, _normal(2, 8), _normal(2, 8), np.abs(_normal(2, 3)))
    eager = block(*args)
    xla = tf.function(block, jit_compile=True)(*args)
    for a, b in zip(eager, xla):
        assert a.shape == (2, 64, 64, 3, a.shape[-1])
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-4)


def test_conv_clamp_clips_activations_except_the_skip():
    """The authors' conv_clamp: each conv's output (after activation and
    gain) clipped to +-clamp * gain; the residual skip never clamps."""
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(0, 50, (2, 8, 8, 4)), tf.float32)
    free = EqualizedConv2D(6, 3, activation="lrelu", down=2,
                           gain=math.sqrt(0.5))
    clamped = EqualizedConv2D(6, 3, activation="lrelu", down=2,
                              gain=math.sqrt(0.5), clamp=10.0)
    free.build(x.shape)
    clamped.build(x.shape)
    clamped.set_weights(free.get_weights())
    limit = 10.0 * math.sqrt(0.5)
    reference = np.clip(free(x).numpy(), -limit, limit)
    assert (np.abs(free(x).numpy()) > limit).any()  # the clamp is hit
    np.testing.assert_array_equal(clamped(x).numpy(), reference)
    block = DiscriminatorBlock(4, 4, conv_clamp=3.0)
    block.build(x.shape)
    assert block.skip.clamp is None
    assert block.conv0.clamp == block.conv1.clamp == 3.0


def test_nearest_upsampling_and_its_gradient_sum_each_2x2_block():
    x = tf.constant(_normal(2, 3, 5, 2, 7))  # [B, H, W, T, C]
    upstream = tf.constant(_normal(2, 6, 10, 2, 7))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = digan_ops.upsample_nearest_2x(x)
    gradient = tape.gradient(y, x, output_gradients=upstream).numpy()
    np.testing.assert_array_equal(
        y.numpy(), np.repeat(np.repeat(x.numpy(), 2, axis=1), 2, axis=2))
    blocks = upstream.numpy().reshape(2, 3, 2, 5, 2, 2, 7)
    np.testing.assert_allclose(gradient, blocks.sum(axis=(2, 4)), rtol=1e-6)
