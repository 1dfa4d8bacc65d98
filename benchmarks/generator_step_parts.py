#!/usr/bin/env python3
"""The G step timed whole and in its two parts, to say which network its
distance to the FLOP floor comes from: the generator's part (draws ->
generated pairs, forward and backward to its weights, given the gradient
that reaches the pairs) and the discriminators' part (generated pairs ->
augmented inputs -> logits -> G loss, forward and backward to the pairs).
Each with its GFLOP (graph_flops.py), seconds and rate against this
machine's float32 matmul peak; what the whole step takes beyond its parts
is the optimizer step. Prints the figures and writes --output (JSON).

  python benchmarks/generator_step_parts.py [--configs=64,128] [--repeats=5]

On the machines of README "Speed" the G step is mostly the phase furthest
from its floor (docs/benchmarks/README.md); the parts' GFLOP add up to the
whole step's (tests/test_generator_step_parts.py).
"""

import argparse
import gc
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import digan_tf  # noqa: E402,F401  (before TensorFlow: oneDNN setting)

# isort: split

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from bench_record import write_record  # noqa: E402
from machine_peak import matmul_peak_rates  # noqa: E402
from machine_peak import matmul_rate_probe  # noqa: E402
from machine_peak import peak_figures  # noqa: E402
from machine_peak import peak_text  # noqa: E402
from train_speed import CONFIGS  # noqa: E402
from train_speed import build  # noqa: E402
from train_speed import example_batch  # noqa: E402
from train_speed import phase_functions  # noqa: E402
from train_speed import phase_gflop  # noqa: E402
from train_speed import time_phases  # noqa: E402

from digan_tf.training import iteration_inputs  # noqa: E402
from digan_tf.training import losses  # noqa: E402


def step_functions(model, batch):
    """{"G step": the whole phase (train_speed's), "generator part",
    "discriminator part"} as tf.functions on one fixed set of draws."""
    whole = phase_functions(model, batch, False)["G"]
    draws = model.draw_iteration(batch[0].shape[0])
    fakes, augment = draws.generator, draws.augment_generator_fake

    def discriminator_part(fake, dt):
        with tf.GradientTape() as tape:
            tape.watch(fake)
            seen = iteration_inputs.pair_inputs(fake, dt, augment)
            loss = model._reduce(losses.generator_loss(
                *model._logits(*seen, fakes.labels)))
        return tape.gradient(loss, fake)

    def generator_part():
        with tf.GradientTape() as tape:
            generated, _ = model._generate_pairs(fakes)
        # The pairs too: a layer whose output only the pairs need (the
        # lower blocks' toRGB) is pruned from a graph that returns only
        # the weight gradients.
        return generated, tape.gradient(
            generated, model.generator.trainable_variables,
            output_gradients=fake_gradient)

    fake, dt = model._generate_pairs(fakes)
    discriminators = tf.function(lambda: discriminator_part(fake, dt))
    fake_gradient = discriminators()
    return {"G step": whole, "generator part": tf.function(generator_part),
            "discriminator part": discriminators}


def time_config(config, repeats, peak, probe):
    """The figures of `step_functions` at `config`, in float32: each
    part's rate as a share of the run's peak and of the peak `probe`d
    around its calls (train_speed.time_phases)."""
    model = build(config, "float32")
    functions = step_functions(model, example_batch(config["resolution"]))
    gflop = phase_gflop(functions)
    seconds, peaks = time_phases(functions, model, repeats, probe)
    parts = {name: dict(seconds=seconds[name], gflop=gflop[name],
                        gflop_per_second=gflop[name] / seconds[name],
                        share_of_peak=gflop[name] / seconds[name] / peak,
                        adjacent_peak_gflops=peaks[name],
                        share_of_adjacent_peak=(gflop[name] / seconds[name]
                                                / peaks[name]))
             for name in functions}
    rest = seconds["G step"] - (seconds["generator part"]
                                + seconds["discriminator part"])
    print(f"R={config['resolution']} fmaps={config['fmaps']}:")
    for name, part in parts.items():
        print(f"  {name:18s} {part['seconds']:6.3f} s  {part['gflop']:7.1f} "
              f"GFLOP  {part['gflop_per_second']:6.1f} GFLOP/s "
              f"({100 * part['share_of_peak']:.0f}% of the peak, "
              f"{100 * part['share_of_adjacent_peak']:.0f}% of the "
              f"{part['adjacent_peak_gflops']:.0f} probed around it)")
    print(f"  G step beyond its parts (the optimizer step): {rest:.3f} s")
    return dict(config, parts=parts, beyond_parts_seconds=rest)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", default="64,128")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", default="generator_step_parts.json")
    args = parser.parse_args()
    rates = matmul_peak_rates()
    probe = matmul_rate_probe()
    print(f"float32 matmul peak: {peak_text(rates)} ({os.cpu_count()} cores)")
    figures = dict(peak_figures(rates), repeats=args.repeats, configs=[])
    for resolution in map(int, args.configs.split(",")):
        figures["configs"].append(time_config(CONFIGS[resolution],
                                              args.repeats, max(rates),
                                              probe))
        keras.backend.clear_session()  # R=128 needs the memory
        gc.collect()
        write_record(args.output, figures)


if __name__ == "__main__":
    main()
