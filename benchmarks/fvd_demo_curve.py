#!/usr/bin/env python3
"""FVD16 with the packaged Kinetics-400 I3D along the demo run (the
README's first command), next to the real-vs-real floor and a real set
with its frames shuffled in time; prints a table and writes JSON (--output,
by default fvd_demo_curve.json in --run_dir) and `demo_progress.gif` beside
it: the run's sample grids at those steps, side by side.

  .venv/bin/python benchmarks/fvd_demo_curve.py --run_dir=/tmp/demo \
      --num_videos=128 --steps=0,500,1000

Trains `configs/demo.flags` into --run_dir first when it has no
checkpoints (the demo keeps them at steps 500 and 1000). Step 0 is an
untrained generator of the same configuration. The floor compares the
training videos (demo seed 0) with as many other videos of the same
built-in dataset (seed 1), which training never saw.
"""

# isort: split
import digan_tf  # noqa: F401  (before TensorFlow: turns on oneDNN)

# isort: split
import argparse
import json
import os
import subprocess
import sys
import time

import keras
import numpy as np
import tensorflow as tf
from bench_record import cpu_description
from bench_record import write_record
from PIL import Image

from digan_tf import run_dir as run_dirs
from digan_tf.data import demo_dataset
from digan_tf.evaluation import clips
from digan_tf.evaluation import distances
from digan_tf.evaluation.features import VideoEmbedder
from digan_tf.generation import video_writer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _train(run_dir):
    command = [sys.executable, os.path.join(ROOT, "bin", "train"),
               f"--flagfile={os.path.join(ROOT, 'configs', 'demo.flags')}",
               f"--run_dir={run_dir}"]
    subprocess.run(command, check=True, cwd=ROOT)


def _write_progress(path, run_dir, steps):
    """The sample grids `samples/step-N.gif` of `steps`, side by side with
    a white gap, as one GIF."""
    grids = []
    for step in steps:
        with Image.open(os.path.join(run_dir, "samples",
                                     f"step-{step:07d}.gif")) as gif:
            frames = []
            for index in range(gif.n_frames):
                gif.seek(index)
                frames.append(np.asarray(gif.convert("RGB")))
        grids.append(np.stack(frames))
    gap = np.full(grids[0].shape[:2] + (8, 3), 255, np.uint8)
    parts = [grids[0]]
    for grid in grids[1:]:
        parts += [gap, grid]
    video_writer.write_gif(path, np.concatenate(parts, axis=2), fps=8)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run_dir", required=True)
    parser.add_argument("--num_videos", type=int, default=256)
    parser.add_argument("--steps", default="0,500,1000")
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    steps = [int(step) for step in args.steps.split(",")]
    checkpoints = os.path.join(args.run_dir, run_dirs.CHECKPOINTS)
    if tf.train.latest_checkpoint(checkpoints) is None:
        _train(args.run_dir)
    with open(os.path.join(args.run_dir, run_dirs.CONFIG)) as f:
        config = json.load(f)
    data_dir = os.path.join(args.run_dir, run_dirs.DEMO_DATA)
    unseen_dir = os.path.join(args.run_dir, "demo_data_unseen")
    demo_dataset.write_demo_dataset(
        unseen_dir, config["resolution"], config["clip_length"],
        num_videos=config["demo_videos"], seed=config["seed"] + 1)

    embedder = VideoEmbedder()  # the packaged weights
    n, batch = args.num_videos, 8

    def features(batches, what):
        return embedder.embed(batches, n, what)

    start = time.monotonic()
    real = features(clips.real_clips(data_dir, 16, 1, n, batch, 0)[1],
                    "real")
    seconds_per_clip = (time.monotonic() - start) / n
    rows = {}
    unseen = features(clips.real_clips(unseen_dir, 16, 1, n, batch, 0)[1],
                      "unseen real")
    rows["real vs unseen real (floor)"] = distances.frechet_distance(
        unseen, real)
    rng = np.random.default_rng(0)

    def shuffled_batches():
        for clip_batch in clips.real_clips(data_dir, 16, 1, n, batch, 7)[1]:
            yield np.stack([c[rng.permutation(len(c))] for c in clip_batch])

    ordered = features(clips.real_clips(data_dir, 16, 1, n, batch, 7)[1],
                       "real (second draw)")
    rows["real vs real, second draw"] = distances.frechet_distance(
        ordered, real)
    rows["real vs the second draw shuffled in time"] = (
        distances.frechet_distance(features(shuffled_batches(), "shuffled"),
                                   real))
    for step in steps:
        if step == 0:
            generator, _, _ = run_dirs.load_ema_generator(args.run_dir)
            keras.utils.set_random_seed(config["seed"])
            generator = generator.__class__.from_config(
                generator.get_config())
        else:
            generator, _, _ = run_dirs.load_ema_generator(
                args.run_dir, os.path.join(checkpoints, f"ckpt-{step}"))
        fake = features(clips.generated_clips(
            generator, 16, 1, n, generator.time_step, batch, 1)[1],
            f"step {step}")
        rows[f"demo step {step}"] = distances.frechet_distance(fake, real)
    print(f"FVD16, {n} clips each, packaged Kinetics-400 I3D; CPU flags: "
          f"{' '.join(cpu_description()[1])}")
    for name, value in rows.items():
        print(f"  {name:<44}{value:10.1f}")
    minutes = seconds_per_clip * 2048 / 60
    print(f"I3D: {seconds_per_clip:.2f} s per 16-frame clip (decode + "
          f"resize + I3D), {minutes:.0f} min per 2048")
    output = args.output or os.path.join(args.run_dir, "fvd_demo_curve.json")
    progress = os.path.join(os.path.dirname(os.path.abspath(output)),
                            "demo_progress.gif")
    _write_progress(progress, args.run_dir, steps)
    print(f"Wrote {progress}")
    write_record(output, {"fvd16": rows, "num_videos": n,
                          "seconds_per_clip": seconds_per_clip,
                          "minutes_per_2048_clips": minutes,
                          "weights_digest": embedder.weights_digest})
    print(f"Wrote {output}")


if __name__ == "__main__":
    main()
