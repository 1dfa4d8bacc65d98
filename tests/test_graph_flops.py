"""The benchmarks' FLOP floor counts what a graph executes, with a
convolution's gradients at the forward's exact multiply-add count."""

import tensorflow as tf

from tests.testing import benchmark_module

graph_flops = benchmark_module("graph_flops")


def _conv_gflop(padding, stride, watch_input):
    x = tf.zeros((2, 9, 9, 3))
    kernel = tf.zeros((3, 3, 3, 4))
    pads = [[0, 0], [padding, padding], [padding, padding], [0, 0]]

    def step():
        with tf.GradientTape() as tape:
            tape.watch([x, kernel])
            out = tf.nn.conv2d(x, kernel, stride, pads)
            loss = tf.reduce_sum(tf.square(out))  # needs the forward
        sources = [x, kernel] if watch_input else [kernel]
        return tape.gradient(loss, sources)

    return graph_flops.executed_gflop(tf.function(step))


def test_padded_and_strided_convolution_gradients_count_exactly():
    for padding, stride, outputs in [(1, 1, 9), (0, 1, 7), (1, 2, 5)]:
        forward = 2 * 2 * outputs * outputs * 9 * 3 * 4 / 1e9
        # The forward, the input gradient and the kernel gradient.
        assert abs(_conv_gflop(padding, stride, True) - 3 * forward) < 1e-15
        # The input gradient nobody needs is pruned, hence not counted.
        assert abs(_conv_gflop(padding, stride, False) - 2 * forward) < 1e-15


def test_batched_matmul_with_adjoint_counts_its_inner_size():
    # [2, 6, 3]^T @ [2, 6, 4]: 2 * 3 * 4 outputs, each a sum over 6.
    a, b = tf.zeros((2, 6, 3)), tf.zeros((2, 6, 4))
    expected = 2 * (2 * 3 * 4) * 6 / 1e9
    for adjoint in (tf.function(lambda: tf.matmul(a, b, adjoint_a=True)),
                    tf.function(lambda: tf.matmul(
                        tf.transpose(a, (0, 2, 1)), b))):
        assert abs(graph_flops.executed_gflop(adjoint) - expected) < 1e-15


def test_the_model_count_is_the_direct_convolutions_where_winograd_runs(
        monkeypatch):
    """Winograd's F(2x2, 3x3) runs 16 multiply-adds per output tile and
    channel pair where the direct convolution runs 36: `executed_gflop`
    counts those, `model_gflop` (the floors) the direct ones, forward and
    gradients, on any CPU."""
    from digan_tf.layers import conv2d

    for rule, value in [("winograd_min_macs", lambda: 0),
                        ("onednn_stride_1_gradient_is_fast", lambda: False),
                        ("MATMUL_GRADIENT_MIN_MACS", 0)]:
        monkeypatch.setattr(conv2d, rule, value)
    x, kernel = tf.zeros((2, 10, 10, 3)), tf.zeros((3, 3, 3, 4))

    def step():
        with tf.GradientTape() as tape:
            tape.watch([x, kernel])
            loss = tf.reduce_sum(tf.square(conv2d.conv2d_valid(x, kernel)))
        return tape.gradient(loss, [x, kernel])

    forward = 2 * 2 * 8 * 8 * 9 * 3 * 4 / 1e9
    # The input gradient is the padded output gradient's convolution, a
    # 10x10 output; the kernel gradient sums the forward's 8x8 outputs.
    winograd_run = (forward + forward * 100 / 64 + forward) * 16 / 36
    assert abs(graph_flops.executed_gflop(tf.function(step))
               - winograd_run) < 1e-15
    assert abs(graph_flops.model_gflop(tf.function(step))
               - 3 * forward) < 1e-15
