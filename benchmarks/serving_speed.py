#!/usr/bin/env python3
"""Frames/s of the exported SavedModel signature and of `bin/generate` end
to end, at the paper config (R=128, fmaps=1) on this machine.

For each of float32 graph and XLA: exports an (untrained, seeded)
generator, loads the SavedModel with `tf.saved_model.load`, times the
`generate_from_seed` signature alone, then `bin/generate`'s pipeline on the
same SavedModel (rendering, uint8, H.264 encoding; with and without GIFs),
and prints frames/s (with the Keras generator in a tf.function as the
baseline of the same run), the fraction of the measured float32 matmul peak (the
19.8 GFLOP per frame of docs/design.md) and the ratio of the command to the signature.
The ratio to the authors' PyTorch code divides by a quoted 2.8 frames/s, from
an earlier measurement of their code on this kind of machine: it is not
measured by this script. Writes the figures to --output (JSON).

  python benchmarks/serving_speed.py [--frames=16] [--repeats=3]
"""

import argparse
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import digan_tf  # noqa: E402  (before TensorFlow: oneDNN setting)

# isort: split

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from bench_record import write_record  # noqa: E402
from generator_speed import GFLOP_PER_FRAME  # noqa: E402
from generator_speed import median_seconds  # noqa: E402
from machine_peak import matmul_peak_rates  # noqa: E402
from machine_peak import peak_figures  # noqa: E402
from machine_peak import peak_text  # noqa: E402

from digan_tf.generation import rendering  # noqa: E402
from digan_tf.generation import sources  # noqa: E402
from digan_tf.serving import export  # noqa: E402

# Quoted from an earlier measurement of the authors' PyTorch code on this kind
# of machine; no run of this script measures it.
AUTHORS_FRAMES_PER_SECOND = 2.8
AUTHORS_NOTE = ("quoted from an earlier measurement of the authors' PyTorch "
                "code, not measured in this run")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default="serving_speed.json")
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    generator = digan_tf.Generator()
    rates = matmul_peak_rates()
    peak = max(rates)
    print(f"float32 matmul peak: {peak_text(rates)}, {os.cpu_count()} cores; "
          f"paper config, 1 video x {args.frames} frames of 128x128")
    z = tf.random.stateless_normal([1, 512], seed=[0, 0])
    t = tf.range(args.frames, dtype=tf.float32)[None] / 15
    direct = tf.function(lambda: generator(z, z, t))
    rate = args.frames / median_seconds(lambda: direct().numpy(),
                                        args.repeats)
    print(f"  Keras generator in a tf.function (baseline): {rate:6.2f} "
          f"frames/s  {rate * GFLOP_PER_FRAME / peak:6.1%} of peak")
    figures = dict(peak_figures(rates), frames=args.frames,
                   repeats=args.repeats, gflop_per_frame=GFLOP_PER_FRAME,
                   authors_frames_per_second_quoted=AUTHORS_FRAMES_PER_SECOND,
                   authors_frames_per_second_note=AUTHORS_NOTE,
                   baseline_frames_per_second=rate, exports={})
    with tempfile.TemporaryDirectory() as directory:
        for jit_compile in (False, True):
            name = "xla" if jit_compile else "graph"
            paths = export.export_generator(generator, directory, name,
                                            jit_compile=jit_compile)
            loaded = tf.saved_model.load(paths.saved_model)
            signature = loaded.signatures["generate_from_seed"]
            inputs = dict(seed=tf.constant([1], tf.int64),
                          num_frames=tf.constant(args.frames))
            seconds = median_seconds(
                lambda: signature(**inputs)["video"].numpy(), args.repeats)
            rows = [("signature", args.frames / seconds)]
            source = sources.open_source(paths.saved_model)
            for gif in (False, True):
                seconds = median_seconds(
                    lambda gif=gif: rendering.generate_videos(
                        source, os.path.join(directory, "out"), num_videos=1,
                        num_frames=args.frames, fps=8, seed=1, gif=gif,
                        grid=False),
                    args.repeats)
                label = "bin/generate" + (" +GIF" if gif else " MP4")
                rows.append((label, args.frames / seconds))
            for label, rate in rows:
                row = dict(frames_per_second=rate,
                           fraction_of_peak=rate * GFLOP_PER_FRAME / peak,
                           vs_authors_quoted=rate / AUTHORS_FRAMES_PER_SECOND,
                           signature_over_this=rows[0][1] / rate)
                figures["exports"].setdefault(name, {})[label] = row
                print(f"  {name:5s} {label:19s} {rate:6.2f} frames/s  "
                      f"{row['fraction_of_peak']:6.1%} of peak  "
                      f"{row['vs_authors_quoted']:5.2f}x vs the authors' "
                      f"quoted {AUTHORS_FRAMES_PER_SECOND} frames/s (not "
                      "measured here)  "
                      f"signature/this {row['signature_over_this']:4.2f}")
            sys.stdout.flush()
    write_record(args.output, figures)


if __name__ == "__main__":
    main()
