#!/usr/bin/env python3
"""Time of one DIGAN training iteration (D step + G step + the R1 step
amortized over 16) against the FLOP floor at this machine's matmul peak,
and input-pipeline throughput. Prints figures (with the spread of the peak's
repeats) and writes them to --output (JSON); asserts nothing.

  python benchmarks/train_speed.py [--configs=64,128] [--repeats=3]
      [--authors_repo=PATH --authors_python=PYTHON] [--rounds=3]

Modes: "graph" (tf.function), "xla" (jit_compile), each in float32 and
mixed_bfloat16. FLOPs are those the traced graphs execute (graph_flops.py:
matmuls and convolutions, multiply-add = 2). mixed_bfloat16 iterations are
also given against their own floor, at the bfloat16 matmul peak.

With a checkout of the authors' code (--authors_repo or DIGAN_AUTHORS_REPO)
and a Python that has PyTorch for it (--authors_python or
DIGAN_AUTHORS_PYTHON; see authors_train_speed.py), each configuration is
also timed with their networks and loss: `--rounds` interleaved pairs of
ours (graph, float32) and theirs, one after the other on the same cores,
printing both, their ratio and each one's distance to its own FLOP floor.
"""

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import digan_tf  # noqa: E402  (before TensorFlow: oneDNN setting)

# isort: split

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from bench_record import write_record  # noqa: E402
from graph_flops import executed_gflop  # noqa: E402
from machine_peak import matmul_peak_rates  # noqa: E402
from machine_peak import peak_figures  # noqa: E402
from machine_peak import peak_text  # noqa: E402

from digan_tf.data import demo_dataset  # noqa: E402
from digan_tf.data import pipelines  # noqa: E402
from digan_tf.training.iteration_inputs import RealPairs  # noqa: E402
from digan_tf.training.optimizers import lazy_regularization_adam  # noqa: E402

CONFIGS = {32: dict(resolution=32, fmaps=0.125),
           64: dict(resolution=64, fmaps=0.5), 128: dict(resolution=128,
                                                          fmaps=1.0)}
BATCH = 4


def build(config, policy):
    keras.mixed_precision.set_dtype_policy(policy)
    keras.utils.set_random_seed(0)
    model = digan_tf.DIGAN(digan_tf.Generator(**config),
                           digan_tf.ImageDiscriminator(**config),
                           digan_tf.MotionDiscriminator(**config))
    model.compile(g_optimizer=lazy_regularization_adam(interval=4),
                  d_optimizer=lazy_regularization_adam(interval=16))
    return model


def phase_functions(model, batch, jit):
    """The D, R1 and G phases as tf.functions on one fixed set of draws."""
    real = RealPairs(tf.stack([batch[0], batch[1]], axis=1), batch[2], None)
    draws = model.draw_iteration(BATCH)
    return {
        "D": tf.function(lambda: model.discriminator_phase(
            real, draws.discriminator, draws.augment_discriminator_fake,
            draws.augment_discriminator_real)["loss_terms"],
            jit_compile=jit),
        "R1": tf.function(lambda: model.r1_phase(
            real, draws.augment_r1_real)["loss_terms"], jit_compile=jit),
        "G": tf.function(lambda: model.generator_phase(
            draws.generator, draws.augment_generator_fake)["loss_terms"],
            jit_compile=jit),
    }


def example_batch(resolution):
    """A fixed batch (frames, frames, dt) of BATCH random pairs."""
    rng = np.random.default_rng(0)
    batch = (rng.uniform(-1, 1, (BATCH, resolution, resolution, 3)),
             rng.uniform(-1, 1, (BATCH, resolution, resolution, 3)),
             rng.uniform(0, 1, BATCH))
    return tuple(tf.constant(x, tf.float32) for x in batch)


def phase_gflop(phases):
    """{phase: GFLOP its graph executes} of `phase_functions`' phases."""
    return {name: executed_gflop(fn) for name, fn in phases.items()}


def time_phases(phases, model, repeats):
    """Median seconds of each phase, after a call that traces it."""
    seconds = {}
    for name, fn in phases.items():
        fn()  # trace / compile
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            tf.identity(model.step).numpy()  # wait for the step
            times.append(time.perf_counter() - start)
        seconds[name] = statistics.median(times)
    return seconds


def iteration(values):
    return values["D"] + values["G"] + values["R1"] / 16


def authors_iteration(args, config):
    """The authors' code's figures for `config` (authors_train_speed.py in
    their environment, a separate process: it imports PyTorch)."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          "authors_train_speed.py")
    child = subprocess.run(
        [args.authors_python, script, f"--authors_repo={args.authors_repo}",
         f"--resolution={config['resolution']}", f"--fmaps={config['fmaps']}",
         f"--batch={BATCH}", f"--repeats={args.repeats}"],
        stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(child.stdout.splitlines()[-1])


def compare_with_authors(args, model, phases, config, peak):
    """`args.rounds` pairs (ours, timing the graph-mode `phases`; theirs)
    at `config`; their ratio per pair and in the median."""
    rounds = []
    for index in range(args.rounds):
        ours = iteration(time_phases(phases, model, args.repeats))
        theirs = authors_iteration(args, config)
        theirs_floor = theirs["gflop_per_iteration"] / peak
        rounds.append(dict(ours_seconds=ours, authors=theirs,
                           authors_over_floor=(theirs["seconds_per_iteration"]
                                               / theirs_floor),
                           speedup=theirs["seconds_per_iteration"] / ours))
        print(f"  round {index + 1}: ours {ours:6.2f} s, authors' "
              f"(PyTorch {theirs['torch_version']}) "
              f"{theirs['seconds_per_iteration']:6.2f} s/iteration, "
              f"{theirs['gflop_per_iteration']:.0f} GFLOP, floor "
              f"{theirs_floor:.2f} s = {rounds[-1]['authors_over_floor']:.2f}x"
              f"; ours is {rounds[-1]['speedup']:.2f}x faster", flush=True)
    speedup = statistics.median(r["speedup"] for r in rounds)
    print(f"R={config['resolution']}: ours {speedup:.2f}x faster than the "
          f"authors' code (median of {args.rounds} pairs)", flush=True)
    return dict(resolution=config["resolution"], fmaps=config["fmaps"],
                rounds=rounds, median_speedup=speedup)


def time_policy(args, config, policy, batch, peaks, figures):
    """Times the iteration of `config` under `policy` in each mode, and
    the authors' code beside ours in float32; appends to `figures`."""
    resolution, peak = config["resolution"], peaks["float32"]
    model = build(config, policy)
    graph_phases = None
    for mode in args.modes.split(","):
        phases = phase_functions(model, batch, mode == "xla")
        if mode == "graph":
            graph_phases = phases
        gflop = phase_gflop(phases)
        seconds = time_phases(phases, model, args.repeats)
        total = iteration(seconds)
        floor = iteration(gflop) / peak
        own_floor = iteration(gflop) / peaks[policy]
        own = ("" if policy == "float32" else
               f", bfloat16 floor {own_floor:.2f} s = "
               f"{total / own_floor:.2f}x")
        print(f"R={resolution} fmaps={config['fmaps']} batch {BATCH}"
              f" {policy:14s} {mode:5s}: {total:6.2f} s/iteration "
              f"(D {seconds['D']:.2f}, G {seconds['G']:.2f}, R1 "
              f"{seconds['R1']:.2f}); {iteration(gflop):.0f} GFLOP, "
              f"float32 floor {floor:.2f} s = {total / floor:.2f}x{own}",
              flush=True)
        figures["iterations"].append(dict(
            resolution=resolution, fmaps=config["fmaps"], policy=policy,
            mode=mode, seconds_per_iteration=total, phase_seconds=seconds,
            phase_gflop=gflop, gflop_per_iteration=iteration(gflop),
            float32_floor_seconds=floor, over_floor=total / floor,
            own_floor_seconds=own_floor, over_own_floor=total / own_floor))
    if args.authors_repo and policy == "float32":
        figures["authors"].append(compare_with_authors(
            args, model, graph_phases
            or phase_functions(model, batch, False), config, peak))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", default="64,128")
    parser.add_argument("--modes", default="graph,xla")
    parser.add_argument("--policies", default="float32,mixed_bfloat16")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default="train_speed.json")
    parser.add_argument("--authors_repo",
                        default=os.environ.get("DIGAN_AUTHORS_REPO"))
    parser.add_argument("--authors_python",
                        default=os.environ.get("DIGAN_AUTHORS_PYTHON",
                                               sys.executable))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip_pipeline", action="store_true")
    args = parser.parse_args()
    rates = matmul_peak_rates()
    peak = max(rates)
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    print(f"float32 matmul peak: {peak_text(rates)} ({os.cpu_count()} "
          f"cores, oneDNN={onednn})")
    figures = dict(peak_figures(rates), onednn=onednn, batch=BATCH,
                   repeats=args.repeats, iterations=[], authors=[])
    peaks = dict(float32=peak)
    if "mixed_bfloat16" in args.policies.split(","):
        # Its floor: the same FLOPs at the bfloat16 matmul peak (twice
        # float32's with AVX512-BF16; without it, bfloat16 is emulated).
        bf16_rates = matmul_peak_rates(dtype="bfloat16")
        peaks["mixed_bfloat16"] = max(bf16_rates)
        print(f"bfloat16 matmul peak: {peak_text(bf16_rates)}")
        figures["bfloat16_peak"] = peak_figures(bf16_rates)
    for resolution in map(int, args.configs.split(",")):
        config = CONFIGS[resolution]
        batch = example_batch(resolution)
        for policy in args.policies.split(","):
            time_policy(args, config, policy, batch, peaks, figures)
            # Each model's graphs and buffers go before the next one is
            # built (and the authors' code runs beside it): R=128 needs
            # the memory.
            keras.backend.clear_session()
            gc.collect()
        write_record(args.output, figures)  # what is done so far
    keras.mixed_precision.set_dtype_policy("float32")
    if not args.skip_pipeline:
        figures["input_pipeline_pairs_per_second"] = pipeline_rate()
    write_record(args.output, figures)


def pipeline_rate():
    """Pairs/s of the training input pipeline on 128x128 JPEG shards."""
    with tempfile.TemporaryDirectory() as directory:
        demo_dataset.write_demo_dataset(directory, 128, 16, num_videos=32)
        dataset = pipelines.frame_pair_dataset(directory, 64, 16, seed=0)
        iterator = iter(dataset)
        next(iterator)
        start = time.perf_counter()
        for _ in range(20):
            next(iterator)
        rate = 20 * 64 / (time.perf_counter() - start)
        print(f"input pipeline: {rate:.0f} pairs/s (128x128 JPEG, batch 64)")
    return rate


if __name__ == "__main__":
    main()
