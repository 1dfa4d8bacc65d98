"""One prepared video = one tf.train.Example of JPEG frames.

Features: `frames` (bytes list, one JPEG per frame, R x R RGB),
`num_frames` (int64), `label` (int64, -1 without labels), `source` (bytes,
the path relative to the input folder). Shards are `shard-NNNNN-of-MMMMM`
`.tfrecord` files beside a `manifest.json`.
"""

import json
import os

import tensorflow as tf

MANIFEST = "manifest.json"
SHARD_PATTERN = "shard-*-of-*.tfrecord"


def shard_name(index, count):
    return f"shard-{index:05d}-of-{count:05d}.tfrecord"


def encode_example(jpeg_frames, label, source):
    """Serialized Example of one video."""
    feature = {
        "frames": tf.train.Feature(
            bytes_list=tf.train.BytesList(value=list(jpeg_frames))),
        "num_frames": tf.train.Feature(
            int64_list=tf.train.Int64List(value=[len(jpeg_frames)])),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
        "source": tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[source.encode("utf-8")])),
    }
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    return example.SerializeToString()


def parse_example(serialized):
    """{frames: string [n], num_frames: int64, label: int64}."""
    parsed = tf.io.parse_single_example(serialized, {
        "frames": tf.io.VarLenFeature(tf.string),
        "num_frames": tf.io.FixedLenFeature([], tf.int64),
        "label": tf.io.FixedLenFeature([], tf.int64),
    })
    parsed["frames"] = tf.sparse.to_dense(parsed["frames"])
    return parsed


def read_manifest(data_dir):
    """The manifest of a prepared dataset, with an error naming the folder
    when there is none."""
    path = os.path.join(data_dir, MANIFEST)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(
            f"`data_dir`: '{data_dir}' has no {MANIFEST}; prepare it with "
            "bin/prepare_data."
        )
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def shard_files(data_dir):
    """Sorted shard paths of a prepared dataset (any tf.io.gfile path)."""
    files = sorted(tf.io.gfile.glob(os.path.join(data_dir, SHARD_PATTERN)))
    if not files:
        raise FileNotFoundError(
            f"`data_dir`: no {SHARD_PATTERN} files in '{data_dir}'."
        )
    return files


def class_frequencies(manifest):
    """Number of videos of each class of a prepared dataset, in class
    index order."""
    counts = [0] * len(manifest["class_names"])
    for video in manifest["videos"]:
        if video["label"] >= 0:
            counts[video["label"]] += 1
    return counts


def check_has_labels(manifest, data_dir):
    """Raises a ValueError when a prepared dataset has no class labels
    (which a conditional model needs)."""
    if not manifest["class_names"]:
        raise ValueError(f"`data_dir` '{data_dir}' has no class labels, "
                         "which a conditional model needs; prepare it with "
                         "bin/prepare_data --labels=parent_dir.")
