"""The features FVD and KVD compare: I3D's 400 Kinetics logits averaged
over time, of uint8 clips resized as reference FVD resizes them
(design.md section 6)."""

import hashlib

import numpy as np
import tensorflow as tf

from digan_tf.evaluation import i3d_weights
from digan_tf.models.i3d import I3D
from digan_tf.models.i3d import INPUT_SIZE
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


class VideoEmbedder:
    """I3D features [N, 400] (float64) of uint8 clips, batch by batch.

    Args:
        weights: path of the pretrained I3D (see `i3d_weights`); None = the
            packaged Kinetics-400 weights.
        randinit: bool, fixed random weights instead (the `*_randinit`
            sanity metrics); `weights` is then ignored.
        jit_compile: bool, compile the network with XLA.
    """

    def __init__(self, weights=None, randinit=False, jit_compile=False):
        self.network = I3D(dtype="float32")
        if randinit:
            self.weights = None
            self.network.randomize(RANDINIT_SEED)
        else:
            self.weights = i3d_weights.resolve(weights)
            i3d_weights.load(self.network, self.weights)
        hasher = hashlib.sha1()
        for _, variable in sorted(
                self.network.checkpoint_variables().items()):
            hasher.update(np.ascontiguousarray(variable.numpy()).tobytes())
        self.weights_digest = hasher.hexdigest()
        self._embed = tf.function(
            lambda clips: self.network(preprocess(clips)),
            jit_compile=jit_compile, reduce_retracing=True)

    def embed_batch(self, clips):
        """Features [B, 400] of one uint8 batch [B, T, H, W, 3]."""
        return self._embed(tf.constant(clips)).numpy().astype(np.float64)

    def embed(self, batches, total, description):
        """Features of `total` clips from an iterable of uint8 batches,
        with a progress bar."""
        bar = ProgressBar(total, "videos", description)
        features = []
        for clips in batches:
            features.append(self.embed_batch(clips))
            bar.update(len(clips))
        bar.close()
        if not features:
            return np.zeros((0, 400))
        return np.concatenate(features)


def batched(clips, batch_size):
    """uint8 batches of up to `batch_size` consecutive clips of one shape
    from an iterable of clips [T, H, W, 3]."""
    batch = []
    for clip in clips:
        if batch and (clip.shape != batch[0].shape
                      or len(batch) == batch_size):
            yield np.stack(batch)
            batch = []
        batch.append(clip)
    if batch:
        yield np.stack(batch)


def _check_clip(clip):
    clip = np.asarray(clip)
    if clip.dtype != np.uint8 or clip.ndim != 4 or clip.shape[-1] != 3:
        raise ValueError(f"`clips` must be uint8 [N, T, H, W, 3] (or a list "
                         f"of [T, H, W, 3]); got a clip of {clip.dtype} "
                         f"{list(clip.shape)}.")
    if clip.shape[0] < 9:
        raise ValueError(f"`clips` need at least 9 frames (I3D's last pool "
                         f"spans 2 of its 8x-downsampled steps); got "
                         f"{clip.shape[0]}.")
    return clip


def video_features(clips, weights=None, batch_size=8):
    """The float64 features FVD uses, [N, 400], of uint8 clips: an array
    [N, T, H, W, 3] or a list of [T, H, W, 3] clips of any sizes (frames
    are resized to 224 x 224; T >= 9), with the packaged Kinetics-400 I3D
    unless `weights` names another.

    Example:
        real = digan_tf.video_features(real_clips)
        fake = digan_tf.video_features(fake_clips)
        fvd = digan_tf.evaluation.distances.frechet_distance(fake, real)
    """
    clips = [_check_clip(clip) for clip in clips]
    embedder = VideoEmbedder(weights)
    features = [embedder.embed_batch(batch)
                for batch in batched(clips, batch_size)]
    return np.concatenate(features) if features else np.zeros((0, 400))
