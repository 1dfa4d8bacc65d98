#!/usr/bin/env python3
"""Time of one DIGAN training iteration (D step + G step + the R1 step
amortized over 16) against the FLOP floor at this machine's matmul peak,
and input-pipeline throughput. Prints figures (with the spread of the peak's
repeats) and writes them to --output (JSON); asserts nothing.

  python benchmarks/train_speed.py [--configs=64,128] [--repeats=3]
      [--authors_repo=PATH --authors_python=PYTHON] [--rounds=3]

Modes: "graph" (tf.function), "xla" (jit_compile), each in float32 and
mixed_bfloat16. FLOPs are those the traced graphs execute (graph_flops.py:
matmuls and convolutions, multiply-add = 2), with direct convolutions
where layers take Winograd's (AVX2 CPUs): the model's work, as the
authors' code does it; what runs is recorded too
(`gflop_run_per_iteration`). mixed_bfloat16 iterations are
also given against their own floor, at the bfloat16 matmul peak. float32
iterations are given against two floors: at the run's best matmul peak,
and at the peak probed before and after each timed call (`time_phases`),
since a shared VM's peak can move by a third between minutes. The
phases are timed apart, each on fixed draws; the float32 graph-mode
iteration is also timed as training runs it (`--train_steps` steps of the
model's own train function: G, D and every 16th step R1 in one graph,
with the draws, the EMA update and the loss trackers).

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
from graph_flops import model_gflop  # noqa: E402
from machine_peak import matmul_peak_rates  # noqa: E402
from machine_peak import matmul_rate_probe  # noqa: E402
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
R1_INTERVAL = 16  # the model's default, which `build` keeps


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


def phase_gflop(phases, run=False):
    """{phase: GFLOP} of `phase_functions`' phases: the model's (the
    floor: its graph with direct convolutions, `graph_flops.model_gflop`),
    or with `run` what its graph runs (fewer where layers take Winograd)."""
    count = executed_gflop if run else model_gflop
    return {name: count(fn) for name, fn in phases.items()}


def winograd_text(gflop, run_gflop):
    """What the FLOP count says of the Winograd layers, where any ran."""
    if run_gflop >= gflop:
        return ""
    return f" ({run_gflop:.0f} run: Winograd's products)"


def time_phases(phases, model, repeats, probe=None):
    """({phase: median seconds}, {phase: peak}) over `repeats` calls of
    each phase, after a call that traces it. With `probe`
    (machine_peak.matmul_rate_probe) the matmul peak is probed before the
    first call and after each: a call's peak is the better of the probes
    around it (a neighbour only ever slows a probe down), and a phase's
    the median of its calls' (None without a probe). A shared VM's peak
    moves by a third within minutes, so the floor at the peak of the same
    minutes says more than the floor at the run's best."""
    seconds, peaks = {}, {}
    for name, fn in phases.items():
        fn()  # trace / compile
        times, rates = [], []
        before = probe() if probe else None
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            tf.identity(model.step).numpy()  # wait for the step
            times.append(time.perf_counter() - start)
            if probe:
                after = probe()
                rates.append(max(before, after))
                before = after
        seconds[name] = statistics.median(times)
        peaks[name] = statistics.median(rates) if probe else None
    return seconds, peaks


def iteration(values):
    return values["D"] + values["G"] + values["R1"] / R1_INTERVAL


def peak_around(work, probe=None):
    """(work(), the better of the matmul peaks `probe`d just before and
    after it; None without `probe`): a neighbour only ever slows a probe
    down."""
    before = probe() if probe else None
    result = work()
    return result, max(before, probe()) if probe else None


def time_train_function(model, batch, steps, probe=None):
    """(seconds per step, peak) over `steps` consecutive steps of the
    model's own train function, the one `fit` and bin/train call: G, D
    and, every r1_interval-th step, R1 in one graph, with the step's
    random draws, the EMA update and the loss trackers, where
    `time_phases` runs each phase alone on fixed draws. The first two
    calls trace its two variants (with and without R1) and are not timed;
    `steps`, a multiple of r1_interval, hold the R1 step as often as
    training does. The peak is the better of the probes before and after
    (None without `probe`)."""
    data = iter(tf.data.Dataset.from_tensors(batch).repeat())
    train_function = model.make_train_function()
    for _ in range(2):
        train_function(data)
    tf.identity(model.step).numpy()

    def timed_steps():
        start = time.perf_counter()
        for _ in range(steps):
            train_function(data)
        tf.identity(model.step).numpy()  # wait for the last step
        return (time.perf_counter() - start) / steps

    return peak_around(timed_steps, probe)


def adjacent_floor(gflop, peaks):
    """Seconds of the iteration's FLOPs at each phase's probed peak."""
    return iteration({name: gflop[name] / peaks[name] for name in gflop})


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


def compare_with_authors(args, model, phases, gflop, config, peak, probe):
    """`args.rounds` pairs (ours, timing the graph-mode `phases`, whose
    GFLOP are `gflop`; theirs) at `config`; their ratio per pair and in
    the median, and each one's
    distance to its floor at the run's peak and at the peak probed around
    it (`time_phases`; theirs: the better of the probes before and after
    their process)."""
    rounds = []
    for index in range(args.rounds):
        seconds, peaks = time_phases(phases, model, args.repeats, probe)
        ours = iteration(seconds)
        theirs, theirs_peak = peak_around(
            lambda: authors_iteration(args, config), probe)
        theirs_seconds = theirs["seconds_per_iteration"]
        theirs_floor = theirs["gflop_per_iteration"] / peak
        rounds.append(dict(
            ours_seconds=ours, ours_phase_peaks_gflops=peaks,
            ours_over_adjacent_floor=ours / adjacent_floor(gflop, peaks),
            authors=theirs, authors_peak_gflops=theirs_peak,
            authors_over_floor=theirs_seconds / theirs_floor,
            authors_over_adjacent_floor=(theirs_seconds * theirs_peak
                                         / theirs["gflop_per_iteration"]),
            speedup=theirs_seconds / ours))
        print(f"  round {index + 1}: ours {ours:6.2f} s "
              f"({rounds[-1]['ours_over_adjacent_floor']:.2f}x the floor at "
              f"the peak probed around it), authors' (PyTorch "
              f"{theirs['torch_version']}) {theirs_seconds:6.2f} s/iteration, "
              f"{theirs['gflop_per_iteration']:.0f} GFLOP, floor "
              f"{theirs_floor:.2f} s = {rounds[-1]['authors_over_floor']:.2f}x"
              f" ({rounds[-1]['authors_over_adjacent_floor']:.2f}x at "
              f"{theirs_peak:.0f} GFLOP/s probed around it); ours is "
              f"{rounds[-1]['speedup']:.2f}x faster", flush=True)
    speedup = statistics.median(r["speedup"] for r in rounds)
    print(f"R={config['resolution']}: ours {speedup:.2f}x faster than the "
          f"authors' code (median of {args.rounds} pairs)", flush=True)
    return dict(resolution=config["resolution"], fmaps=config["fmaps"],
                rounds=rounds, median_speedup=speedup)


def train_function_figures(args, model, batch, phases_figures, probe):
    """The step as training runs it (`time_train_function`) against the
    graph-mode phases timed apart, their floor and the iteration's GFLOP
    at the peak probed around it (`phases_figures`: their record entry)."""
    seconds, peak = time_train_function(model, batch, args.train_steps,
                                        probe)
    figures = dict(
        train_function_seconds=seconds,
        train_function_over_phases=(
            seconds / phases_figures["seconds_per_iteration"]),
        train_function_over_floor=(
            seconds / phases_figures["float32_floor_seconds"]),
        train_function_peak_gflops=peak,
        train_function_over_adjacent_floor=(
            seconds * peak / phases_figures["gflop_per_iteration"]))
    print(f"  the train function (what bin/train runs), {args.train_steps} "
          f"steps: {seconds:6.2f} s/step, {figures['train_function_over_phases']:.3f}"
          f"x the phases timed apart; {figures['train_function_over_floor']:.2f}x"
          f" the floor ({figures['train_function_over_adjacent_floor']:.2f}x at"
          f" {peak:.0f} GFLOP/s probed around it)", flush=True)
    return figures


def time_policy(args, config, policy, batch, peaks, probe, figures):
    """Times the iteration of `config` under `policy` in each mode, and
    the authors' code beside ours in float32; appends to `figures`.
    float32 iterations are also given against the floor at the float32
    peak `probe`d around their calls (`time_phases`)."""
    resolution, peak = config["resolution"], peaks["float32"]
    phase_probe = probe if policy == "float32" else None
    model = build(config, policy)
    graph = None  # (phases, their GFLOP) in graph mode, for the authors'
    graph_entry = None  # its figures, to which the train function's add
    for mode in args.modes.split(","):
        phases = phase_functions(model, batch, mode == "xla")
        gflop = phase_gflop(phases)
        run_gflop = iteration(phase_gflop(phases, run=True))
        if mode == "graph":
            graph = phases, gflop
        seconds, phase_peaks = time_phases(phases, model, args.repeats,
                                           phase_probe)
        total = iteration(seconds)
        floor = iteration(gflop) / peak
        own_floor = iteration(gflop) / peaks[policy]
        probed = (dict(phase_peaks_gflops=phase_peaks,
                       over_adjacent_floor=(
                           total / adjacent_floor(gflop, phase_peaks)))
                  if phase_probe else {})
        own = (f" ({probed['over_adjacent_floor']:.2f}x at the peak probed "
               f"around each call)" if phase_probe else
               f", bfloat16 floor {own_floor:.2f} s = "
               f"{total / own_floor:.2f}x")
        print(f"R={resolution} fmaps={config['fmaps']} batch {BATCH}"
              f" {policy:14s} {mode:5s}: {total:6.2f} s/iteration "
              f"(D {seconds['D']:.2f}, G {seconds['G']:.2f}, R1 "
              f"{seconds['R1']:.2f}); {iteration(gflop):.0f} GFLOP"
              f"{winograd_text(iteration(gflop), run_gflop)}, "
              f"float32 floor {floor:.2f} s = {total / floor:.2f}x{own}",
              flush=True)
        figures["iterations"].append(dict(
            resolution=resolution, fmaps=config["fmaps"], policy=policy,
            mode=mode, seconds_per_iteration=total, phase_seconds=seconds,
            phase_gflop=gflop, gflop_per_iteration=iteration(gflop),
            gflop_run_per_iteration=run_gflop,
            float32_floor_seconds=floor, over_floor=total / floor,
            own_floor_seconds=own_floor, over_own_floor=total / own_floor,
            **probed))
        if mode == "graph":
            graph_entry = figures["iterations"][-1]
    if args.authors_repo and policy == "float32":
        if graph is None:
            phases = phase_functions(model, batch, False)
            graph = phases, phase_gflop(phases)
        figures["authors"].append(compare_with_authors(
            args, model, *graph, config, peak, probe))
    # The train function last: its graph holds more memory than a phase's,
    # and at R=128 that left too little for the authors' process beside
    # it (OOM-killed on a 24 GiB machine).
    if graph_entry is not None and phase_probe and args.train_steps:
        graph_entry.update(train_function_figures(args, model, batch,
                                                  graph_entry, phase_probe))


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
    parser.add_argument("--train_steps", type=int, default=16,
                        help="float32 graph-mode steps of the model's own "
                        f"train function to time (a multiple of {R1_INTERVAL}"
                        ", the R1 interval; 0: none)")
    parser.add_argument("--skip_pipeline", action="store_true")
    args = parser.parse_args()
    if args.train_steps < 0 or args.train_steps % R1_INTERVAL:
        parser.error(f"--train_steps must be a non-negative multiple of "
                     f"{R1_INTERVAL} (the R1 interval), got "
                     f"{args.train_steps}")
    rates = matmul_peak_rates()
    probe = matmul_rate_probe()
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
            time_policy(args, config, policy, batch, peaks, probe, figures)
            write_record(args.output, figures)  # what is done so far
            # Each model's graphs and buffers go before the next one is
            # built (and the authors' code runs beside it): R=128 needs
            # the memory.
            keras.backend.clear_session()
            gc.collect()
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
