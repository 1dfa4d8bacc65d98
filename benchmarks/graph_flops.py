"""FLOPs a traced tf.function executes, for the benchmarks' FLOP floors.

Counts the matmuls and convolutions (multiply-add = 2, TensorFlow's
registered per-op statistics, the ones tf.profiler sums) of the ops that
the function's outputs and side effects (variable updates) depend on. A
count over the whole graph, as tf.profiler makes, also includes gradients
that the tape builds and the function runtime prunes, like the
discriminators' kernel gradients in the G step: it overstated our G step
by a third at R=64. Element-wise ops are left out, as PyTorch's
FlopCounterMode leaves them out for the authors' code: the floor is the
work that can run at the matmul peak.

A convolution's two gradients are counted exactly, as PyTorch counts
them: the forward's multiply-adds, one per element of the output gradient
and kernel tap and input channel. TensorFlow's own statistic for them
counts from the input's size, which for a padded input overstates the
count (by 6% for a 3x3 layer at 64x64).
"""

import numpy as np
from tensorflow.python.framework import ops as framework_ops

COUNTED_OPS = ("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3",
               "Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter",
               "Conv3D", "DepthwiseConv2dNative")


def live_ops(graph):
    """The ops of `graph` that its outputs and control outputs need."""
    stack = [t.op for t in graph.outputs] + list(graph.control_outputs)
    live = set()
    while stack:
        op = stack.pop()
        if op in live:
            continue
        live.add(op)
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    return live


# A convolution gradient's operand that is the kernel (or its gradient).
CONV_GRADIENT_KERNEL = {"Conv2DBackpropInput": lambda op: op.inputs[1],
                        "Conv2DBackpropFilter": lambda op: op.outputs[0]}


def op_flops(graph, op):
    """FLOPs of one counted op (multiply-add = 2)."""
    if op.type in CONV_GRADIENT_KERNEL:
        kernel = CONV_GRADIENT_KERNEL[op.type](op).shape
        output_gradient = op.inputs[2].shape
        return (2 * np.prod(output_gradient.as_list(), dtype=np.int64)
                * kernel[0] * kernel[1] * kernel[2])
    return framework_ops.get_stats_for_node_def(graph, op.node_def,
                                                "flops").value


def executed_gflop(function, *args):
    """GFLOP of the matmuls and convolutions `function(*args)` runs."""
    graph = function.get_concrete_function(*args).graph
    return sum(op_flops(graph, op) for op in live_ops(graph)
               if op.type in COUNTED_OPS) / 1e9
