#!/usr/bin/env python3
"""Profile of one DIGAN training iteration (D step, G step and one R1
step) with TensorFlow's profiler: the top ops by time and their share, the
layers that take most time with the GFLOP/s their matmuls and convolutions
reach (the ones furthest below the machine's peak are where speed is
lost), and the process's peak memory. Prints them and writes --output
(JSON).

  python benchmarks/train_profile.py --resolution=128 --fmaps=1

The R1 step is profiled whole (training runs it every 16th step). The
trace is left in --trace_dir for TensorBoard's profile plugin.

Ops run one at a time by default (--inter_op_threads=1): with TensorFlow's
default of one executor thread per core, two ops run at once and share
the intra-op thread pool, and an op's time then includes waiting for the
other's work. A Slice showed 1.6 s at R=128 on the Intel Xeon with AMX
that way, 0.04 s alone (docs/benchmarks/README.md). The wall time of
--inter_op_threads=0 (TensorFlow's default) is training's; the printed
overlap says how long two or more ops ran at once.
"""

import argparse
import collections
import glob
import os
import re
import resource
import tempfile
import time

os.environ.setdefault("DIGAN_TF_QUIET", "1")  # see digan_tf/utils/cpp_logs.py

import digan_tf  # noqa: E402,F401  (before TensorFlow: oneDNN setting)

# isort: split

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from bench_record import write_record  # noqa: E402
from graph_flops import COUNTED_OPS  # noqa: E402
from graph_flops import live_ops  # noqa: E402
from graph_flops import op_flops  # noqa: E402
from tensorflow.tsl.profiler.protobuf import xplane_pb2  # noqa: E402
from train_speed import BATCH  # noqa: E402
from train_speed import build  # noqa: E402

from digan_tf.training.iteration_inputs import RealPairs  # noqa: E402


def op_events(trace_dir):
    """[(op event name `scope/name:Type`, start, end)], in seconds, of the
    TensorFlow op events on the executor threads (`tf_Compute/*` lines) of
    the newest trace under `trace_dir`."""
    path = max(glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"),
                         recursive=True), key=os.path.getmtime)
    space = xplane_pb2.XSpace()
    with open(path, "rb") as f:
        space.ParseFromString(f.read())
    events = []
    for plane in space.planes:
        if not plane.name.startswith("/host:CPU"):
            continue
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if ":" in name and "::" not in name:
                    start = (line.timestamp_ns * 1000 + event.offset_ps) / 1e12
                    events.append(
                        (name, start, start + event.duration_ps / 1e12))
    return events


def op_times(events):
    """{op event name: seconds} summed over `op_events`. Ops on parallel
    threads overlap, so the sum can exceed the wall time; shares are of
    the sum."""
    totals = collections.Counter()
    for name, start, end in events:
        totals[name] += end - start
    return totals


def overlap_seconds(events):
    """How long two or more of `op_events` ran at once."""
    edges = sorted([(start, 1) for _, start, _ in events]
                   + [(end, -1) for _, _, end in events])
    overlap, running, last = 0.0, 0, None
    for time_point, change in edges:
        if running >= 2:
            overlap += time_point - last
        running += change
        last = time_point
    return overlap


def by_type(times):
    """{op type: seconds} of `op_times`' {event name: seconds}."""
    totals = collections.Counter()
    for name, seconds in times.items():
        totals[name.rsplit(":", 1)[-1]] += seconds
    return totals


def layer_of(op_name):
    """The layer an op belongs to, the same for every call of the layer and
    its gradients: 'gradient_tape/image_discriminator_7/b64_1/conv0_1/
    convolution/Conv2DBackpropFilter' -> 'image_discriminator/b64/conv0'
    (the first three scopes, gradient tapes and call numbers dropped)."""
    scopes = [re.sub(r"_\d+$", "", scope)
              for scope in op_name.split(":")[0].split("/")[:-1]
              if scope != "gradient_tape"]
    return "/".join(scopes[:3]) or "(top level)"


def layer_figures(times, graph):
    """Per layer: seconds of all its ops, seconds and GFLOP of its matmuls
    and convolutions (graph_flops' count of the ops `graph` executes), and
    the rate those reach."""
    flops = collections.Counter()
    for op in live_ops(graph):
        if op.type in COUNTED_OPS:
            flops[layer_of(op.name)] += op_flops(graph, op)
    layers = collections.defaultdict(lambda: dict(seconds=0.0,
                                                  counted_seconds=0.0))
    for name, seconds in times.items():
        layer = layers[layer_of(name)]
        layer["seconds"] += seconds
        # The runtime's types of COUNTED_OPS: oneDNN's (_MklNativeConv2D,
        # _MklMatMul, fused ones named after their last op) and TF's own.
        op_type = name.rsplit(":", 1)[-1]
        if "Conv" in op_type or "MatMul" in op_type:
            layer["counted_seconds"] += seconds
    for name, layer in layers.items():
        layer["gflop"] = flops[name] / 1e9
        layer["gflop_per_second"] = (layer["gflop"] / layer["counted_seconds"]
                                     if layer["counted_seconds"] else 0.0)
    return dict(sorted(layers.items(), key=lambda kv: -kv[1]["seconds"]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--fmaps", type=float, default=1.0)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--trace_dir", default=None)
    parser.add_argument("--inter_op_threads", type=int, default=1,
                        help="ops run at once (0: TensorFlow's default, one "
                        "per core, as training runs)")
    parser.add_argument("--output", default="train_profile.json")
    args = parser.parse_args()
    if args.inter_op_threads < 0:
        parser.error("--inter_op_threads must be 0 (TensorFlow's default) "
                     f"or more; got {args.inter_op_threads}")
    tf.config.threading.set_inter_op_parallelism_threads(
        args.inter_op_threads)
    config = dict(resolution=args.resolution, fmaps=args.fmaps)
    model = build(config, "float32")
    rng = np.random.default_rng(0)
    frames = rng.uniform(-1, 1, (BATCH, 2, args.resolution, args.resolution,
                                 3)).astype(np.float32)
    real = RealPairs(tf.constant(frames), tf.constant(
        rng.uniform(0, 1, BATCH).astype(np.float32)), None)
    draws = model.draw_iteration(BATCH)
    iteration = tf.function(lambda: [
        model.discriminator_phase(
            real, draws.discriminator, draws.augment_discriminator_fake,
            draws.augment_discriminator_real)["loss_terms"],
        model.generator_phase(draws.generator,
                              draws.augment_generator_fake)["loss_terms"],
        model.r1_phase(real, draws.augment_r1_real)["loss_terms"]])
    iteration()  # trace and warm up
    trace_dir = args.trace_dir or tempfile.mkdtemp(prefix="train_profile-")
    tf.profiler.experimental.start(trace_dir)
    start = time.perf_counter()
    iteration()
    seconds = time.perf_counter() - start
    tf.profiler.experimental.stop()
    events = op_events(trace_dir)
    times = op_times(events)
    overlap = overlap_seconds(events)
    totals = by_type(times)
    whole = sum(totals.values())
    layers = layer_figures(times, iteration.get_concrete_function().graph)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"R={args.resolution} fmaps={args.fmaps} batch {BATCH}: "
          f"{seconds:.1f} s wall, {whole:.1f} s of op time summed over "
          "threads, in one iteration (D + G + R1); "
          f"peak memory {peak_mb:.0f} MB (process); two or more ops at "
          f"once for {overlap:.1f} s (--inter_op_threads="
          f"{args.inter_op_threads})")
    top = totals.most_common(args.top)
    for name, op_seconds in top:
        print(f"  {name:32s} {op_seconds:7.2f} s  "
              f"{100 * op_seconds / whole:5.1f}%")
    print("layers by op time: all its ops, its matmuls and convolutions, "
          "their GFLOP and rate")
    for name, layer in list(layers.items())[:args.top]:
        print(f"  {name:42s} {layer['seconds']:7.2f} s "
              f"{layer['counted_seconds']:7.2f} s {layer['gflop']:7.1f} GFLOP "
              f"{layer['gflop_per_second']:6.1f} GFLOP/s")
    write_record(args.output, dict(
        config, batch=BATCH, inter_op_threads=args.inter_op_threads,
        wall_seconds=seconds, op_seconds=whole, overlap_seconds=overlap,
        peak_memory_mb=peak_mb,
        top_ops=[dict(op=n, seconds=t, share=t / whole) for n, t in top],
        layers=[dict(layer=n, **f) for n, f in layers.items()],
        trace_dir=trace_dir))


if __name__ == "__main__":
    main()
