"""Inversion and views of a model trained on the built-in dataset, on clips
it did not see: PSNR of the fitted and held-out frames (against blending
neighbours) per latent space, and the README's GIFs.

  python benchmarks/projection_demo.py --model=runs/demo --output_dir=proj

The clips are demo videos drawn with another seed than the training set's
(rendered, then encoded to H.264 and decoded, as a user's clip would be).
Writes `projection_demo.json` (figures, command, CPU, TF version, date) and
`resolution_scale.gif`, `field_of_view.gif`, `projection.gif`.
"""

import json
import os
import time

import bench_record
import numpy as np
from absl import app
from absl import flags

from digan_tf.data import demo_dataset
from digan_tf.generation import projection
from digan_tf.generation import sources
from digan_tf.generation import video_writer

flags.DEFINE_string("model", None, "Run dir or .keras of a demo model.")
flags.DEFINE_string("output_dir", None, "Where results go.")
flags.DEFINE_integer("clips", 3, "Unseen clips to fit.", lower_bound=1)
flags.DEFINE_integer("steps", 300, "Projection steps.", lower_bound=1)
flags.DEFINE_integer("seed", 1234, "Seed of the unseen clips (training "
                     "uses 0).")
FLAGS = flags.FLAGS


def _upscale(video, size):
    """Nearest-neighbour enlargement, to show pixels at `size`."""
    factor = size // video.shape[1]
    return video.repeat(factor, axis=1).repeat(factor, axis=2)


def main(argv):
    del argv
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    generator = sources.load_generator(FLAGS.model)
    size = generator.resolution
    length = generator.clip_length
    rng = np.random.default_rng(FLAGS.seed)
    timestamps = generator.time_step * np.arange(length)
    fitted, held_out = projection.split_frames(length, 2)
    results = []
    for index in range(FLAGS.clips):
        clip = demo_dataset.render_video(
            rng, size, length, demo_dataset.SHAPES[index % 2])
        path = os.path.join(FLAGS.output_dir, f"clip{index}.mp4")
        video_writer.write_mp4(path, clip, 8)
        frames = projection.read_clip(path, size, length)
        fits = {}
        for space in projection.LATENT_SPACES:
            start = time.monotonic()
            fit = fits[space] = projection.project(
                generator, frames[fitted], timestamps[fitted], space,
                FLAGS.steps)
            report = projection.write_outputs(
                generator, fit, frames, timestamps, held_out,
                os.path.join(FLAGS.output_dir, f"clip{index}_{space}"), 8)
            results.append(dict(
                clip=index, latent_space=space,
                seconds=time.monotonic() - start,
                **{k: report[k] for k in ("psnr_fitted", "psnr_held_out",
                                          "psnr_held_out_blend")}))
            print(json.dumps(results[-1]))
        if index == 0:
            best = fits["w"]
            big = best.render(generator, timestamps, resolution_scale=4)
            video_writer.write_gif(
                os.path.join(FLAGS.output_dir, "resolution_scale.gif"),
                np.concatenate([_upscale(frames, 4 * size),
                                _upscale(best.render(generator, timestamps),
                                         4 * size), big], axis=2), 8)
            wide = best.render(generator, timestamps, resolution_scale=2,
                               field_of_view=2)
            video_writer.write_gif(
                os.path.join(FLAGS.output_dir, "field_of_view.gif"), wide, 8)
            video_writer.write_gif(
                os.path.join(FLAGS.output_dir, "projection.gif"),
                _upscale(np.concatenate(
                    [np.concatenate([frames, frames[-1:].repeat(length, 0)]),
                     best.render(generator, generator.time_step
                                 * np.arange(2 * length))], axis=2),
                         2 * size), 8)
    summary = {}
    for space in projection.LATENT_SPACES:
        rows = [r for r in results if r["latent_space"] == space]
        summary[space] = {k: float(np.mean([r[k] for r in rows])) for k in (
            "psnr_fitted", "psnr_held_out", "psnr_held_out_blend")}
    bench_record.write_record(
        os.path.join(FLAGS.output_dir, "projection_demo.json"),
        dict(steps=FLAGS.steps, results=results, mean=summary))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    flags.mark_flags_as_required(["model", "output_dir"])
    app.run(main)
