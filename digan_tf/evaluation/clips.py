"""The clips a metric compares (design.md section 6), as papers draw them:

- real clips: `num_clips` draws, each a video chosen uniformly at random
  (with replacement) among the dataset's videos of at least `span` frames,
  at a uniformly random offset; videos shorter than `span` are left out
  and counted, never padded;
- generated clips: frames at `t = i * stride * time_step` from t = 0;
- clips of a folder of videos (another model's samples): one clip per
  video from its first frame, videos in name order.
A clip spans `span` frames and keeps every `stride`-th (fvd128_stride8:
16 of 128). All are uint8 [B, span / stride, R, R, 3] batches.
"""

import dataclasses
import os
import sys

import numpy as np
import tensorflow as tf

from digan_tf.data import tfrecord_format
from digan_tf.data import video_sources
from digan_tf.evaluation.features import batched
from digan_tf.generation import latents
from digan_tf.generation import video_writer


@dataclasses.dataclass(frozen=True)
class ClipSet:
    """Where a set of clips comes from, recorded with every result."""

    source: str          # data_dir, videos folder or "generator"
    sampling: str
    videos: int          # videos in the source
    eligible: int        # videos long enough for one clip
    left_out: int        # videos shorter than the span
    clips: int


def _video_records(data_dir):
    """Parsed videos of a prepared dataset in a fixed (shard) order."""
    dataset = tf.data.TFRecordDataset(tfrecord_format.shard_files(data_dir))
    return dataset.map(tfrecord_format.parse_example)


def real_clips(data_dir, span, stride, num_clips, batch_size, seed):
    """(`ClipSet`, iterator of uint8 batches) of the real-clip draw."""
    lengths = [v["num_frames"]
               for v in tfrecord_format.read_manifest(data_dir)["videos"]]
    eligible = sum(n >= span for n in lengths)
    info = ClipSet(os.path.abspath(data_dir),
                   "uniform over videos, random offset", len(lengths),
                   eligible, len(lengths) - eligible, num_clips)
    if not eligible:
        raise ValueError(f"`data_dir` '{data_dir}' has no video of at least "
                         f"{span} frames (the longest has "
                         f"{max(lengths, default=0)}).")
    rng = np.random.default_rng(seed)
    choice = rng.integers(eligible, size=num_clips)
    position = rng.random(num_clips)

    def clips():
        index = 0
        for video in _video_records(data_dir):
            frames = int(video["num_frames"])
            if frames < span:
                continue
            for u in position[choice == index]:
                offset = int(u * (frames - span + 1))
                jpegs = video["frames"][offset:offset + span:stride]
                yield np.stack([tf.io.decode_jpeg(j, channels=3).numpy()
                                for j in jpegs])
            index += 1

    return info, batched(clips(), batch_size)


def generated_clips(generator, span, stride, num_clips, time_step,
                    batch_size, seed, truncation_psi=1.0):
    """(`ClipSet`, iterator of uint8 batches) of `num_clips` videos from
    seeded latents (labels drawn uniformly for conditional generators)."""
    z, z_motion = latents.sample_latents(generator, num_clips, seed)
    labels = None
    if generator.num_classes:
        labels = np.random.default_rng(seed).integers(
            generator.num_classes, size=num_clips)
    timestamps = latents.clip_timestamps(span // stride,
                                         time_step=time_step * stride)

    def batches():
        for start in range(0, num_clips, batch_size):
            part = slice(start, start + batch_size)
            yield video_writer.to_uint8(latents.render(
                generator, z[part], z_motion[part], timestamps,
                labels=None if labels is None else labels[part],
                truncation_psi=truncation_psi, batch_size=batch_size))

    info = ClipSet("generator", "latent seeds, from t = 0", num_clips,
                   num_clips, 0, num_clips)
    return info, batches()


def folder_clips(directory, span, stride, num_clips, resolution,
                 batch_size):
    """(`ClipSet`, iterator of uint8 batches): the first `span` frames of
    the first `num_clips` videos of `directory` (files or frame folders)
    that have them, as R x R frames (centre square, as bin/prepare_data).

    Raises:
        ValueError: fewer than `num_clips` videos are long enough.
    """
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"`videos`: no such folder '{directory}'.")
    paths = [os.path.join(directory, p)
             for p in video_sources.find_videos(directory)]
    selected, short = [], 0
    for path in paths:
        if len(selected) == num_clips:
            break
        frames = _first_frames(path, span, resolution)
        if frames is None:
            short += 1
        else:
            selected.append(frames[::stride])
    if len(selected) < num_clips:
        raise ValueError(
            f"`videos` '{directory}' has {len(selected)} videos of at least "
            f"{span} frames ({short} shorter, {len(paths)} in all); "
            f"`num_videos`={num_clips} needs that many.")
    info = ClipSet(os.path.abspath(directory), "first frames, name order",
                   len(paths), len(selected), short, num_clips)
    return info, batched(selected, batch_size)


def _first_frames(path, span, resolution):
    """uint8 [span, R, R, 3], or None for a video shorter than `span` (or
    one that cannot be decoded, reported on stderr)."""
    frames = []
    try:
        for image in video_sources.decode_frames(path, resolution):
            frames.append(np.asarray(image))
            if len(frames) == span:
                return np.stack(frames)
    except video_sources.DecodeError as error:
        print(f"skipped {path}: {error}", file=sys.stderr, flush=True)
    return None
