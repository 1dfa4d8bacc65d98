"""What `bin/prepare_data` does: videos -> sharded TFRecords + manifest.

Each shard is written under a temporary name and renamed when complete,
with a sidecar `.json` listing what it holds; a re-run skips every shard
whose sidecar matches the plan, so an interrupted job resumes where it
stopped. Decoding runs on a thread pool (PyAV and Pillow release the GIL).
"""

import collections
import concurrent.futures
import itertools
import json
import os
import sys

import tensorflow as tf

from digan_tf.data import tfrecord_format
from digan_tf.data import video_sources
from digan_tf.utils import validation
from digan_tf.utils.atomic_files import atomic_path
from digan_tf.utils.progress import ProgressBar
from digan_tf.version import __version__

LABEL_MODES = ("none", "parent_dir")


class NothingUsableError(Exception):
    """Not one video could be prepared."""


def _ordered_parallel_map(fn, items, workers):
    """`map(fn, items)` on `workers` threads, in order, at most 2 * workers
    results in flight (memory stays bounded)."""
    items = iter(items)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        pending = collections.deque(
            pool.submit(fn, item) for item in itertools.islice(items,
                                                               2 * workers))
        while pending:
            result = pending.popleft().result()
            for item in itertools.islice(items, 1):
                pending.append(pool.submit(fn, item))
            yield result


def _class_of(source, labels):
    if labels == "none":
        return None
    parts = source.split(os.sep)
    if len(parts) < 2:
        raise ValueError(
            f"`labels`=parent_dir: '{source}' is not inside a class folder "
            "of `input_dir` (expected INPUT_DIR/CLASS/VIDEO)."
        )
    return parts[0]


def _plan(sources, videos_per_shard):
    count = -(-len(sources) // videos_per_shard)
    return [(tfrecord_format.shard_name(i, count),
             sources[i * videos_per_shard:(i + 1) * videos_per_shard])
            for i in range(count)]


def _sidecar_path(output_dir, shard):
    return os.path.join(output_dir, shard[: -len(".tfrecord")] + ".json")


def _finished(output_dir, shard, sources, resolution):
    sidecar = _sidecar_path(output_dir, shard)
    if not (os.path.exists(sidecar)
            and os.path.exists(os.path.join(output_dir, shard))):
        return None
    with open(sidecar) as f:
        summary = json.load(f)
    if summary["planned"] == sources and summary["resolution"] == resolution:
        return summary
    return None


def _remove_stale_shards(output_dir, planned):
    names = {name for name, _ in planned}
    for path in tf.io.gfile.glob(
            os.path.join(output_dir, tfrecord_format.SHARD_PATTERN)):
        if os.path.basename(path) not in names:
            os.remove(path)
            sidecar = _sidecar_path(output_dir, os.path.basename(path))
            if os.path.exists(sidecar):
                os.remove(sidecar)


def prepare(input_dir, output_dir, resolution=128, labels="none",
            min_frames=16, workers=None, videos_per_shard=64,
            jpeg_quality=95):
    """Prepares every video under `input_dir`; returns the manifest.

    Raises:
        ValueError / FileNotFoundError: bad arguments, naming the flag.
        NothingUsableError: no video could be prepared.
    """
    resolution = validation.check_power_of_two("resolution", resolution,
                                               32)
    min_frames = validation.check_int("min_frames", min_frames, 1)
    videos_per_shard = validation.check_int("videos_per_shard",
                                            videos_per_shard, 1)
    workers = validation.check_int("workers", workers or os.cpu_count(), 1)
    if labels not in LABEL_MODES:
        raise ValueError(f"`labels` must be one of {LABEL_MODES}; got "
                         f"{labels!r}.")
    if not os.path.isdir(input_dir):
        raise FileNotFoundError(f"`input_dir`: no such folder '{input_dir}'.")
    sources = video_sources.find_videos(input_dir)
    if not sources:
        raise NothingUsableError(
            f"`input_dir`: no videos in '{input_dir}' (files ending in "
            f"{', '.join(video_sources.VIDEO_EXTENSIONS)} or folders of "
            "PNG/JPEG frames)."
        )
    classes = {source: _class_of(source, labels) for source in sources}
    class_names = sorted({c for c in classes.values() if c is not None})
    class_index = {name: i for i, name in enumerate(class_names)}
    os.makedirs(output_dir, exist_ok=True)
    planned = _plan(sources, videos_per_shard)
    _remove_stale_shards(output_dir, planned)

    summaries = {}
    todo = []
    for shard, shard_sources in planned:
        summary = _finished(output_dir, shard, shard_sources, resolution)
        if summary is None:
            todo.append((shard, shard_sources))
        else:
            summaries[shard] = summary
    done_videos = len(sources) - sum(len(s) for _, s in todo)
    bar = ProgressBar(len(sources), "videos", "prepare_data",
                      initial=done_videos)

    def decode(source):
        try:
            frames = video_sources.decode_jpeg_frames(
                os.path.join(input_dir, source), resolution, jpeg_quality)
            return source, frames, None
        except video_sources.DecodeError as error:
            return source, None, str(error)

    results = _ordered_parallel_map(
        decode, [s for _, shard_sources in todo for s in shard_sources],
        workers)
    for shard, shard_sources in todo:
        summary = {"resolution": resolution, "planned": shard_sources,
                   "videos": [], "failed": [], "too_short": []}
        path = os.path.join(output_dir, shard)
        with atomic_path(path) as temporary:
            with tf.io.TFRecordWriter(temporary) as writer:
                for source, frames, error in itertools.islice(
                        results, len(shard_sources)):
                    bar.update(1)
                    if error is not None:
                        print(f"\nskipped {source}: {error}", file=sys.stderr)
                        summary["failed"].append(
                            {"source": source, "error": error})
                        continue
                    if len(frames) < min_frames:
                        print(f"\nskipped {source}: {len(frames)} frames, "
                              f"fewer than `min_frames`={min_frames}",
                              file=sys.stderr)
                        summary["too_short"].append(
                            {"source": source, "num_frames": len(frames)})
                        continue
                    label = classes[source]
                    label = -1 if label is None else class_index[label]
                    writer.write(tfrecord_format.encode_example(
                        frames, label, source))
                    summary["videos"].append({"source": source,
                                              "num_frames": len(frames),
                                              "label": label})
        with atomic_path(_sidecar_path(output_dir, shard)) as temporary:
            with open(temporary, "w") as f:
                json.dump(summary, f)
        summaries[shard] = summary
    bar.close()
    manifest = _manifest(planned, summaries, resolution, labels, class_names)
    with atomic_path(os.path.join(output_dir, tfrecord_format.MANIFEST)) as t:
        with open(t, "w") as f:
            json.dump(manifest, f, indent=1)
    if not manifest["num_videos"]:
        raise NothingUsableError(
            f"no usable video in '{input_dir}': {len(manifest['failed'])} "
            f"failed to decode, {len(manifest['too_short'])} shorter than "
            f"`min_frames`={min_frames}."
        )
    return manifest


def _manifest(planned, summaries, resolution, labels, class_names):
    shards = [summaries[name] for name, _ in planned]
    videos = [dict(v, shard=name) for (name, _), s in zip(planned, shards)
              for v in s["videos"]]
    return {
        "format": "digan_tf.tfrecord_format/1",
        "created_by": f"digan_tf {__version__}",
        "resolution": resolution,
        "labels": labels,
        "class_names": class_names,
        "num_videos": len(videos),
        "num_frames": sum(v["num_frames"] for v in videos),
        "shards": [{"file": name, "num_videos": len(s["videos"])}
                   for (name, _), s in zip(planned, shards)],
        "videos": videos,
        "failed": [f for s in shards for f in s["failed"]],
        "too_short": [f for s in shards for f in s["too_short"]],
    }
