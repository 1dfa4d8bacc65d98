"""FLOPs a traced tf.function executes, for the benchmarks' FLOP floors.

Counts the matmuls and convolutions (multiply-add = 2, TensorFlow's
registered per-op statistics, the ones tf.profiler sums, except where
those are wrong: batched matmuls and convolution gradients) of the ops that
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

Where layers convolve by Winograd's F(2x2, 3x3) (`digan_tf.layers.winograd`,
on AMD CPUs: `conv2d.winograd_min_macs`) a graph runs fewer multiply-adds
than the model's (16 per 2x2 output tile and channel pair where the direct
convolution does 36):
`executed_gflop` counts what runs, `model_gflop` the model's work, which
the floors are, counted on the graph traced with direct convolutions.
"""

import numpy as np
import tensorflow as tf
from tensorflow.python.framework import ops as framework_ops

from digan_tf.layers import conv2d

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
    if op.type.startswith("BatchMatMul"):
        # TensorFlow's statistic reads a `transpose_a` attribute, which a
        # batched matmul does not have (it has `adj_x`): it counted an
        # `x^T @ y`, the per-video weight gradient of every generator
        # layer, with the wrong inner size (channels, not positions).
        inner = op.inputs[0].shape[-2 if op.get_attr("adj_x") else -1]
        return 2 * inner * np.prod(op.outputs[0].shape.as_list(),
                                   dtype=np.int64)
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


def model_gflop(function, *args):
    """GFLOP of the model's matmuls and convolutions in the tf.function
    `function(*args)`: what it runs with every convolution direct (traced
    anew so, where this CPU would take Winograd's)."""
    if conv2d.winograd_min_macs() is None:
        return executed_gflop(function, *args)
    with conv2d.direct_convolutions():
        return executed_gflop(tf.function(function.python_function), *args)


def main():
    """Prints and records the GFLOP of each training phase (and of an
    iteration, D + G + R1 / 16) that `train_speed.py`'s floors are made
    of, without timing anything.

      python benchmarks/graph_flops.py [--configs=64,128]
    """
    import argparse

    import train_speed  # here: it imports this module
    from bench_record import write_record

    parser = argparse.ArgumentParser(description=main.__doc__.split("\n")[0])
    parser.add_argument("--configs", default="64,128")
    parser.add_argument("--output", default="graph_flops.json")
    args = parser.parse_args()
    figures = []
    for resolution in map(int, args.configs.split(",")):
        config = train_speed.CONFIGS[resolution]
        model = train_speed.build(config, "float32")
        gflop = train_speed.phase_gflop(train_speed.phase_functions(
            model, train_speed.example_batch(resolution), False))
        total = train_speed.iteration(gflop)
        print(f"R={resolution} fmaps={config['fmaps']} batch "
              f"{train_speed.BATCH}: D {gflop['D']:.1f}, G {gflop['G']:.1f}, "
              f"R1 {gflop['R1']:.1f} GFLOP; iteration {total:.1f}", flush=True)
        figures.append(dict(resolution=resolution, fmaps=config["fmaps"],
                            batch=train_speed.BATCH, phase_gflop=gflop,
                            gflop_per_iteration=total))
    write_record(args.output, dict(configs=figures))


if __name__ == "__main__":
    main()
