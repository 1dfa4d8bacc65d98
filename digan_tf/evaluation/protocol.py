"""FVD and KVD of a generator against a prepared dataset (design.md section 6):
what `bin/evaluate` and the metrics during training run.

Protocol (reference FVD, DIGAN's evaluation):
- clips of L consecutive frames (16 or 128), uint8, resized per frame to
  224x224 with TF1 `resize_bilinear` (no half-pixel centers), scaled by
  `2 x / 255 - 1`;
- features: I3D's 400 Kinetics logits averaged over time;
- real clips: `num_videos` clips drawn at random (fixed seed) from the
  dataset's non-overlapping clips; their features are cached on disk per
  dataset, clip length, count, seed and I3D weights;
- generated clips: `num_videos` videos from seeded latents (random labels
  for class-conditional generators), frames at `t = i * time_step`, each
  repeat with new latents;
- FVD: `distances.frechet_distance`; KVD: `distances.kernel_distance` (no
  scaling, as DIGAN reports it).
"""

import hashlib
import json
import os

import numpy as np
import tensorflow as tf

from digan_tf.data import pipelines
from digan_tf.data import tfrecord_format
from digan_tf.evaluation import distances
from digan_tf.evaluation.i3d_weights import checkpoint_prefix
from digan_tf.evaluation.i3d_weights import load as load_i3d_weights
from digan_tf.generation import latents
from digan_tf.generation import video_writer
from digan_tf.models.i3d import I3D
from digan_tf.models.i3d import INPUT_SIZE
from digan_tf.utils import validation
from digan_tf.utils.atomic_files import atomic_path
from digan_tf.utils.progress import ProgressBar

RANDINIT_SEED = 0


def preprocess(clips):
    """uint8 clips [B, T, H, W, 3] -> float32 [B, T, 224, 224, 3] in
    [-1, 1], as reference FVD: TF1 bilinear resize (corner-aligned source
    grid, no half-pixel centers), then `2 x / 255 - 1`."""
    shape = tf.shape(clips)
    frames = tf.reshape(clips, tf.concat([[-1], shape[2:]], 0))
    resized = tf.raw_ops.ResizeBilinear(
        images=frames, size=[INPUT_SIZE, INPUT_SIZE], align_corners=False,
        half_pixel_centers=False)
    videos = tf.reshape(resized, [shape[0], shape[1], INPUT_SIZE,
                                  INPUT_SIZE, 3])
    return 2.0 * videos / 255.0 - 1.0


def _digest(*parts):
    return hashlib.sha1(json.dumps(parts, sort_keys=True).encode()).hexdigest()


class VideoEmbedder:
    """I3D features [N, 400] (float64) of uint8 clips, batch by batch.

    Args:
        weights: path of the pretrained I3D (`digan_tf.evaluation.i3d_weights`), or
            None for fixed random weights (`*_randinit` metrics).
        jit_compile: bool, compile the network with XLA.
    """

    def __init__(self, weights=None, jit_compile=False):
        self.weights = weights
        self.network = I3D(dtype="float32")
        if weights:
            load_i3d_weights(self.network, weights)
        else:
            self.network.randomize(RANDINIT_SEED)
        hasher = hashlib.sha1()
        for _, variable in sorted(
                self.network.checkpoint_variables().items()):
            hasher.update(np.ascontiguousarray(variable.numpy()).tobytes())
        self.weights_digest = hasher.hexdigest()
        self._embed = tf.function(
            lambda clips: self.network(preprocess(clips)),
            jit_compile=jit_compile, reduce_retracing=True)

    def embed(self, batches, total, description):
        """Features of `total` clips from an iterable of uint8 batches."""
        bar = ProgressBar(total, "videos", description)
        features = []
        for clips in batches:
            features.append(self._embed(tf.constant(clips)).numpy())
            bar.update(len(clips))
        bar.close()
        return np.concatenate(features).astype(np.float64)


def count_clips(data_dir, clip_length):
    """Non-overlapping clips of `clip_length` frames in a dataset."""
    manifest = tfrecord_format.read_manifest(data_dir)
    return sum(v["num_frames"] // clip_length for v in manifest["videos"])


def check_enough_clips(data_dir, metrics, num_videos, argument="num_videos"):
    """Raises a ValueError naming `argument` (the caller's name for
    `num_videos`) when `data_dir` has too few clips for one of `metrics`."""
    for clip_length in sorted({m.clip_length for m in metrics}):
        available = count_clips(data_dir, clip_length)
        if available < num_videos:
            raise ValueError(
                f"`{argument}`={num_videos} but `data_dir` '{data_dir}' "
                f"holds only {available} clips of {clip_length} frames.")


def real_clip_batches(data_dir, clip_length, num_videos, batch_size, seed):
    """`num_videos` random clips of the dataset, uint8 [B, L, R, R, 3]."""
    dataset = pipelines.clip_dataset(data_dir, clip_length, batch_size,
                                     seed=seed, shuffle=True)
    remaining = num_videos
    for clips, _ in dataset:
        yield clips.numpy()[:remaining]
        remaining -= len(clips)
        if remaining <= 0:
            return


def generated_clip_batches(generator, num_videos, clip_length, time_step,
                           batch_size, seed, truncation_psi=1.0):
    """`num_videos` generated clips, uint8 [B, L, R, R, 3]."""
    z, z_motion = latents.sample_latents(generator, num_videos, seed)
    labels = None
    if generator.num_classes:
        labels = np.random.default_rng(seed).integers(
            generator.num_classes, size=num_videos)
    timestamps = latents.clip_timestamps(clip_length, time_step=time_step)
    for start in range(0, num_videos, batch_size):
        part = slice(start, start + batch_size)
        yield video_writer.to_uint8(latents.render(
            generator, z[part], z_motion[part], timestamps,
            labels=None if labels is None else labels[part],
            truncation_psi=truncation_psi, batch_size=batch_size))


class Evaluator:
    """Computes metrics (`distances.METRIC_NAMES`) of generators against one
    dataset; keeps the I3D networks and the real features between calls.

    Args:
        data_dir: a prepared dataset.
        metric_names: comma-separated names, e.g. "fvd16,kvd16".
        num_videos: int, real and generated clips per measurement.
        i3d_weights: path of the pretrained I3D, or None (only `*_randinit`
            metrics then).
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
        self.metrics = distances.parse_metric_names(
            metric_names, have_weights=bool(i3d_weights))
        self.num_videos = validation.check_int("num_videos", num_videos, 2)
        self.batch_size = validation.check_int("batch_size", batch_size, 1)
        validation.check_int("seed", seed, 0)
        validation.check_int("kvd_subsets", kvd_subsets, 1)
        validation.check_int("kvd_subset_size", kvd_subset_size, 2)
        if i3d_weights:
            checkpoint_prefix(i3d_weights)
        check_enough_clips(data_dir, self.metrics, num_videos)
        self.data_dir = data_dir
        self.i3d_weights = i3d_weights
        self.cache_dir = cache_dir
        self.seed = seed
        self.kvd_options = dict(num_subsets=kvd_subsets,
                                subset_size=kvd_subset_size, seed=seed)
        self.jit_compile = jit_compile
        self._embedders = {}
        self._real = {}

    def embedder(self, randinit):
        """The `VideoEmbedder` with random (`randinit`) or pretrained
        weights, built on first use."""
        if randinit not in self._embedders:
            self._embedders[randinit] = VideoEmbedder(
                None if randinit else self.i3d_weights, self.jit_compile)
        return self._embedders[randinit]

    def _clip_batch(self, clip_length):
        return max(1, self.batch_size * 16 // clip_length)

    def real_features(self, randinit, clip_length):
        """Features of the real clips, from memory, the cache or I3D."""
        embedder = self.embedder(randinit)
        key = (embedder.weights_digest, clip_length)
        if key in self._real:
            return self._real[key]
        manifest = tfrecord_format.read_manifest(self.data_dir)
        digest = _digest(os.path.abspath(self.data_dir), manifest,
                         clip_length, self.num_videos, self.seed,
                         embedder.weights_digest)[:12]
        name = os.path.basename(os.path.normpath(self.data_dir))
        path = None
        if self.cache_dir:
            path = os.path.join(
                self.cache_dir, f"{name}-{clip_length}f-{self.num_videos}-"
                f"{'randinit' if randinit else 'i3d'}-{digest}.npy")
        if path and tf.io.gfile.exists(path):
            with tf.io.gfile.GFile(path, "rb") as f:
                features = np.load(f)
        else:
            features = embedder.embed(
                real_clip_batches(self.data_dir, clip_length,
                                  self.num_videos,
                                  self._clip_batch(clip_length), self.seed),
                self.num_videos, f"I3D real {clip_length}f")
            if path:
                os.makedirs(self.cache_dir, exist_ok=True)
                with atomic_path(path) as temporary:
                    np.save(temporary, features)
        self._real[key] = features
        return features

    def __call__(self, generator, time_step=None, repeats=1,
                 truncation_psi=1.0):
        """{metric name: [value per repeat]} for `generator`; repeat r
        renders videos from latent seed `seed + 1 + r`; frames are
        `time_step` apart (default the generator's training spacing)."""
        if time_step is None:
            time_step = generator.time_step
        repeats = validation.check_int("repeats", repeats, 1)
        results = {m.name: [] for m in self.metrics}
        groups = sorted({(m.randinit, m.clip_length) for m in self.metrics})
        for randinit, clip_length in groups:
            real = self.real_features(randinit, clip_length)
            for repeat in range(repeats):
                fake = self.embedder(randinit).embed(
                    generated_clip_batches(
                        generator, self.num_videos, clip_length, time_step,
                        self._clip_batch(clip_length), self.seed + 1 + repeat,
                        truncation_psi),
                    self.num_videos, f"I3D generated {clip_length}f "
                    f"({repeat + 1}/{repeats})")
                for metric in self.metrics:
                    if (metric.randinit, metric.clip_length) != (
                            randinit, clip_length):
                        continue
                    results[metric.name].append(
                        distances.frechet_distance(fake, real)
                        if metric.kind == "fvd" else
                        distances.kernel_distance(fake, real,
                                                **self.kvd_options))
        return results
