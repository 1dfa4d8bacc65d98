"""What `bin/generate` does: render videos of any length from any
generator source and stream them into MP4 and GIF files.

Frames are rendered a chunk of timestamps at a time and appended to open
encoders, so memory does not grow with the number of frames. Video i uses
seed `seed + i` (the seed of the served `generate_from_seed` signature).
Besides one file per video it writes `grid` (all videos tiled) and
`content_motion` (row i: content code of video i, column j: motion code of
video j), which shows what each code controls.
"""

import contextlib
import os

import numpy as np

from digan_tf.generation import latents
from digan_tf.generation import video_writer
from digan_tf.utils.progress import ProgressBar

GRID_SIDE = 4  # content_motion holds up to 4 x 4 videos


def labels_for(source, num_videos, labels=None):
    """Class per video: `labels` (one value, or one per video) or classes
    in turn; None for an unconditional `source` (a `VideoSource` or a
    `Generator`: anything with `num_classes`)."""
    if not source.num_classes:
        if labels:
            raise ValueError("`labels`: this generator is unconditional.")
        return None
    if not labels:
        return np.arange(num_videos) % source.num_classes
    labels = np.asarray(labels, np.int64)
    if len(labels) not in (1, num_videos):
        raise ValueError(f"`labels`: give 1 or {num_videos} (`num_videos`) "
                         f"values; got {len(labels)}.")
    if labels.min() < 0 or labels.max() >= source.num_classes:
        raise ValueError(f"`labels` must be in [0, {source.num_classes}); "
                         f"got {labels.tolist()}.")
    return np.broadcast_to(labels, (num_videos,)).copy()


def read_codes(path):
    """{"z_content" or "w": [N, size], "z_motion": [N, m]} float32
    (+ "labels" [N]) from an .npz written by `bin/project`; errors name
    the file and key."""
    try:
        with np.load(path) as stored:
            codes = {k: stored[k] for k in stored.files}
    except (OSError, ValueError) as error:
        raise ValueError(f"`codes`: cannot read '{path}' as .npz ({error})."
                         ) from error
    content = [k for k in ("z_content", "w") if k in codes]
    if len(content) != 1:
        raise ValueError(f"`codes`: '{path}' needs one of `z_content` and "
                         f"`w`; it holds {sorted(codes)}.")
    for key in content + ["z_motion"]:
        value = codes.get(key)
        if (value is None or value.ndim != 2
                or not np.issubdtype(value.dtype, np.floating)
                or not np.isfinite(value).all()):
            raise ValueError(f"`codes`: '{path}' needs `{key}`, finite "
                             f"floats [N, size]; it holds {sorted(codes)}.")
    if len(codes[content[0]]) != len(codes["z_motion"]):
        raise ValueError(f"`codes`: '{path}' has {len(codes[content[0]])} "
                         f"{content[0]} rows but {len(codes['z_motion'])} "
                         "z_motion rows.")
    kept = {k: codes[k].astype(np.float32) for k in content + ["z_motion"]}
    if "labels" in codes:
        kept["labels"] = codes["labels"].astype(np.int64)
    return kept


def _check_codes(source, codes):
    for key, size in (("z_content", source.z_dim), ("w", source.w_dim),
                      ("z_motion", source.motion_dim)):
        if key in codes and size and codes[key].shape[1] != size:
            raise ValueError(f"`codes`: {key} has {codes[key].shape[1]} "
                             f"values per video; this model takes {size}.")


def _plan(source, num_videos, seed, labels, content_motion, codes=None):
    """(z_content, z_motion, labels) of every rendered video: the videos
    (from `codes`, or seeds `seed`, `seed + 1`, ...), then the
    content/motion grid pairs; and the grid's side."""
    if codes is None:
        seeds = np.arange(seed, seed + num_videos, dtype=np.int64)
        z, z_motion = (x.numpy() for x in latents.latents_from_seeds(
            seeds, source.z_dim, source.motion_dim))
    else:
        _check_codes(source, codes)
        z = codes.get("z_content", codes.get("w"))
        z_motion = codes["z_motion"]
    side = min(num_videos, GRID_SIDE) if content_motion else 0
    rows, columns = np.divmod(np.arange(side * side), side)
    z = np.concatenate([z, z[rows]])
    z_motion = np.concatenate([z_motion, z_motion[columns]])
    if labels is not None:
        labels = np.concatenate([labels, labels[rows]])
    return z, z_motion, labels, side


def generate_videos(source, output_dir, num_videos, num_frames, fps, seed,
                    truncation_psi=1.0, start_time=0.0, time_step=None,
                    labels=None, grid=True, gif=True, chunk_frames=16,
                    batch_size=8, codes=None):
    """Writes video_NNN.mp4 (+ .gif) per video, and with `grid` also
    grid.* and content_motion.*; returns the paths written.

    `time_step` defaults to the training frame spacing of the source;
    smaller steps raise the frame rate, frames past t = 1 extrapolate.
    `codes` (`read_codes`) replaces the seeds: one video per row; styles
    `w` render through `source.render_styles`, as fitted (no truncation).
    """
    if time_step is None:
        time_step = source.time_step
    styles = codes is not None and "w" in codes
    if styles and truncation_psi != 1:
        raise ValueError("`truncation_psi`: codes holding styles `w` render "
                         "as fitted; leave it at 1.")
    if codes is not None:
        num_videos = len(codes["z_motion"])
        labels = labels or codes.get("labels", np.zeros(0)).tolist()
    labels = labels_for(source, num_videos, labels)
    z, z_motion, labels, side = _plan(source, num_videos, seed, labels, grid,
                                      codes)
    resolution = source.resolution
    limits = source.limits
    batch = max(1, min(batch_size, limits["max_batch"]))
    chunk = max(1, min(chunk_frames, limits["max_frames"],
                       limits["max_pixels"] // (batch * resolution ** 2)))
    names = [f"video_{i:03d}" for i in range(num_videos)]
    if grid:
        names += ["grid", "content_motion"]
    writers_of = {"mp4": video_writer.Mp4Writer, "gif": video_writer.GifWriter}
    extensions = ["mp4", "gif"] if gif else ["mp4"]
    os.makedirs(output_dir, exist_ok=True)

    def draw(part, times):
        times = np.tile(times.astype(np.float32), (len(z[part]), 1))
        if styles:
            return source.render_styles(z[part], z_motion[part], times)
        return source.render(z[part], z_motion[part], times,
                             None if labels is None else labels[part],
                             truncation_psi)

    bar = ProgressBar(len(z) * num_frames, "frame", "generate")
    with contextlib.ExitStack() as stack:
        writers = {name: [stack.enter_context(writers_of[e](
            os.path.join(output_dir, f"{name}.{e}"), fps))
            for e in extensions] for name in names}
        for first in range(0, num_frames, chunk):
            count = min(chunk, num_frames - first)
            times = start_time + time_step * np.arange(first, first + count)
            videos = np.concatenate([draw(slice(b, b + batch), times)
                                     for b in range(0, len(z), batch)])
            bar.update(videos.shape[0] * count)
            outputs = dict(zip(names, videos[:num_videos]))
            if grid:
                outputs["grid"] = video_writer.grid(videos[:num_videos])
                outputs["content_motion"] = video_writer.grid(
                    videos[num_videos:], columns=side)
            for name, frames in outputs.items():
                for writer in writers[name]:
                    writer.append(frames)
    bar.close()
    return [w.path for name in names for w in writers[name]]
