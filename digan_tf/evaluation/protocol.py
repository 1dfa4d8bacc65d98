"""FVD and KVD of a generator, or of a folder of videos, against a prepared
dataset (design.md section 6): what `bin/evaluate` and the metrics during
training run.

Each metric is a named protocol (`distances.METRIC_NAMES`): `fvd16`,
`kvd16`, `fvd128`, `kvd128` and `fvd128_stride8` (128-frame clips, every
8th frame), each with its `*_randinit` sanity twin (I3D with fixed random
weights). Clips are drawn as `clips` says; features are I3D's Kinetics
logits averaged over time (`features`), of uint8 frames resized to 224;
FVD is `distances.frechet_distance`, KVD `distances.kernel_distance` (no
scaling, as DIGAN reports it). Repeats draw new generated sets against the
same real set; DIGAN reports their mean and standard deviation. Real
features are cached on disk per dataset, protocol, count, seed and weights.
"""

import dataclasses
import hashlib
import json
import os

import numpy as np
import tensorflow as tf

from digan_tf.data import tfrecord_format
from digan_tf.evaluation import clips
from digan_tf.evaluation import distances
from digan_tf.evaluation.features import VideoEmbedder
from digan_tf.evaluation.i3d_weights import check as check_weights
from digan_tf.evaluation.i3d_weights import packaged_path
from digan_tf.utils import validation
from digan_tf.utils.atomic_files import atomic_path


def _digest(*parts):
    return hashlib.sha1(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _shard_stamps(data_dir, manifest):
    """[file, size, modification time] of each shard: a dataset prepared
    again at the same path, with the same file names and counts, gets a new
    cache key."""
    stamps = []
    for shard in manifest["shards"]:
        stat = tf.io.gfile.stat(os.path.join(data_dir, shard["file"]))
        stamps.append([shard["file"], stat.length, stat.mtime_nsec])
    return stamps


def check_long_enough(data_dir, metrics, argument="metrics"):
    """Raises a ValueError naming `argument` when `data_dir` has no video
    as long as a metric's clips."""
    manifest = tfrecord_format.read_manifest(data_dir)
    longest = max((v["num_frames"] for v in manifest["videos"]), default=0)
    for metric in metrics:
        if longest < metric.span:
            raise ValueError(
                f"`{argument}`={metric.name} needs videos of at least "
                f"{metric.span} frames; `data_dir` '{data_dir}' has none "
                f"(the longest has {longest}).")


def parse_metrics(metric_names, i3d_weights_path=None, argument="metrics"):
    """`distances.parse_metric_names`, allowing the pretrained metrics when
    weights are given or packaged."""
    have = bool(i3d_weights_path or packaged_path())
    return distances.parse_metric_names(metric_names, argument, have)


class Evaluator:
    """Computes metrics of generators or video folders against one
    dataset; keeps the I3D networks and the real features between calls.

    Args:
        data_dir: a prepared dataset.
        metric_names: comma-separated names, e.g. "fvd16,kvd16".
        num_videos: int, real and generated clips per measurement (2048 in
            the papers).
        i3d_weights: path of the pretrained I3D; None = the packaged
            weights (only `*_randinit` metrics run without any).
        cache_dir: where real features are cached; None = no cache.
        batch_size: int, 16-frame clips per I3D batch (scaled down for
            longer clips).
        seed: int, seed of the real clip draw and of the latents.
        kvd_subsets, kvd_subset_size: `distances.kernel_distance` arguments.
        jit_compile: bool, run I3D with XLA.
    """

    def __init__(self, data_dir, metric_names, num_videos, i3d_weights=None,
                 cache_dir=None, batch_size=8, seed=0, kvd_subsets=100,
                 kvd_subset_size=1000, jit_compile=False):
        self.metrics = parse_metrics(metric_names, i3d_weights)
        self.num_videos = validation.check_int("num_videos", num_videos, 2)
        self.batch_size = validation.check_int("batch_size", batch_size, 1)
        self.seed = validation.check_int("seed", seed, 0)
        validation.check_int("kvd_subsets", kvd_subsets, 1)
        validation.check_int("kvd_subset_size", kvd_subset_size, 2)
        if i3d_weights:
            check_weights(i3d_weights)
        check_long_enough(data_dir, self.metrics)
        self.data_dir = data_dir
        self.i3d_weights = i3d_weights
        self.cache_dir = cache_dir
        self.kvd_options = dict(num_subsets=kvd_subsets,
                                subset_size=kvd_subset_size, seed=seed)
        self.jit_compile = jit_compile
        self.manifest = tfrecord_format.read_manifest(data_dir)
        self._embedders = {}
        self._real = {}
        # (randinit, span, stride) -> {"real": ClipSet, "generated": ...}
        self.clip_sets = {}

    def embedder(self, randinit):
        """The `VideoEmbedder` with random (`randinit`) or pretrained
        weights, built on first use."""
        if randinit not in self._embedders:
            self._embedders[randinit] = VideoEmbedder(
                self.i3d_weights, randinit, self.jit_compile)
        return self._embedders[randinit]

    def _clip_batch(self, clip_length):
        return max(1, self.batch_size * 16 // clip_length)

    def real_features(self, randinit, span, stride):
        """Features of the real clips, from memory, the cache or I3D."""
        embedder = self.embedder(randinit)
        key = (embedder.weights_digest, span, stride)
        if key in self._real:
            return self._real[key]
        info, batches = clips.real_clips(
            self.data_dir, span, stride, self.num_videos,
            self._clip_batch(span // stride), self.seed)
        digest = _digest(os.path.abspath(self.data_dir), self.manifest,
                         _shard_stamps(self.data_dir, self.manifest), span,
                         stride, self.num_videos, self.seed,
                         embedder.weights_digest)[:12]
        name = os.path.basename(os.path.normpath(self.data_dir))
        path = None
        if self.cache_dir:
            path = os.path.join(
                self.cache_dir, f"{name}-{span}f-s{stride}-{self.num_videos}"
                f"-{'randinit' if randinit else 'i3d'}-{digest}.npy")
        if path and tf.io.gfile.exists(path):
            with tf.io.gfile.GFile(path, "rb") as f:
                features = np.load(f)
        else:
            features = embedder.embed(batches, self.num_videos,
                                      f"I3D real {span}f/{stride}")
            if path:
                os.makedirs(self.cache_dir, exist_ok=True)
                with atomic_path(path) as temporary:
                    np.save(temporary, features)
        self._real[key] = (info, features)
        return info, features

    def _measure(self, fake_clips, repeats):
        """{metric name: [value per repeat]}; `fake_clips(span, stride,
        clip_batch, repeat)` gives the (`ClipSet`, batches) to compare."""
        results = {m.name: [] for m in self.metrics}
        groups = sorted({(m.randinit, m.span, m.stride)
                         for m in self.metrics})
        for randinit, span, stride in groups:
            real_info, real = self.real_features(randinit, span, stride)
            for repeat in range(repeats):
                fake_info, batches = fake_clips(
                    span, stride, self._clip_batch(span // stride), repeat)
                fake = self.embedder(randinit).embed(
                    batches, fake_info.clips, f"I3D generated {span}f/"
                    f"{stride} ({repeat + 1}/{repeats})")
                self.clip_sets[(randinit, span, stride)] = {
                    "real": real_info, "generated": fake_info}
                for metric in self.metrics:
                    if (metric.randinit, metric.span, metric.stride) != (
                            randinit, span, stride):
                        continue
                    results[metric.name].append(
                        distances.frechet_distance(fake, real)
                        if metric.kind == "fvd" else
                        distances.kernel_distance(fake, real,
                                                  **self.kvd_options))
        return results

    def __call__(self, generator, time_step=None, repeats=1,
                 truncation_psi=1.0):
        """{metric name: [value per repeat]} for `generator`; repeat r
        renders videos from latent seed `seed + 1 + r`; frames are
        `time_step` apart (default the generator's training spacing)."""
        if time_step is None:
            time_step = generator.time_step
        repeats = validation.check_int("repeats", repeats, 1)
        return self._measure(
            lambda span, stride, batch, repeat: clips.generated_clips(
                generator, span, stride, self.num_videos, time_step, batch,
                self.seed + 1 + repeat, truncation_psi), repeats)

    def evaluate_folder(self, directory):
        """{metric name: [value]} for the videos (files or frame folders)
        in `directory`, e.g. another model's samples: the first
        `num_videos` long enough, from their first frame."""
        return self._measure(
            lambda span, stride, batch, repeat: clips.folder_clips(
                directory, span, stride, self.num_videos,
                self.manifest["resolution"], batch), 1)

    def report(self):
        """What the last measurements compared, for the result JSON: per
        metric its protocol and the real and generated clip sets, and the
        I3D weights (path and digest)."""
        metrics = {}
        for metric in self.metrics:
            sets = self.clip_sets.get(
                (metric.randinit, metric.span, metric.stride), {})
            metrics[metric.name] = {
                "kind": metric.kind, "span": metric.span,
                "stride": metric.stride,
                "frames_per_clip": metric.clip_length,
                "randinit": metric.randinit,
                **{name: dataclasses.asdict(info)
                   for name, info in sets.items()}}
        weights = {}
        if True in self._embedders:
            weights["randinit_digest"] = self._embedders[True].weights_digest
        if False in self._embedders:
            weights.update(path=self._embedders[False].weights,
                           digest=self._embedders[False].weights_digest)
        return {"metrics": metrics, "i3d": weights, "seed": self.seed,
                "num_videos": self.num_videos}
