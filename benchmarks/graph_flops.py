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
"""

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


def executed_gflop(function, *args):
    """GFLOP of the matmuls and convolutions `function(*args)` runs."""
    graph = function.get_concrete_function(*args).graph
    flops = 0
    for op in live_ops(graph):
        if op.type in COUNTED_OPS:
            flops += framework_ops.get_stats_for_node_def(
                graph, op.node_def, "flops").value
    return flops / 1e9
