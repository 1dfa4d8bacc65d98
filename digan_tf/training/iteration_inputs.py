"""What one training iteration consumes: the real pairs, every random draw
(stateless, made for the global batch and sliced per replica, so one device
and N replicas draw the same numbers), and the inputs the two
discriminators see. `DIGAN` calls these; replaying the authors' recorded
iterations passes its own `IterationDraws` instead."""

import collections

import numpy as np
import tensorflow as tf

from digan_tf.generation import latents
from digan_tf.training import augment
from digan_tf.utils import validation

# Offsets that give each random draw of a step its own stateless seed.
(G_LATENTS, G_AUG_FAKE, D_LATENTS, D_AUG_FAKE, D_AUG_REAL,
 R1_AUG_REAL) = range(6)

RealPairs = collections.namedtuple("RealPairs", ["frames", "dt", "labels"])
RealPairs.__doc__ = """A batch of real training pairs: `frames`
[B, 2, R, R, 3] in [-1, 1], `dt` [B] (the pair's time gap as a fraction of
the clip), `labels` int [B] or None."""

FakeDraws = collections.namedtuple(
    "FakeDraws", ["z_content", "z_motion", "timestamps", "labels"])
FakeDraws.__doc__ = """What the generator needs for B generated pairs:
`z_content` [B, z_dim], `z_motion` [B, motion_dim], ordered `timestamps`
[B, 2] and `labels` int [B] (None for unconditional models)."""

IterationDraws = collections.namedtuple("IterationDraws", [
    "generator", "discriminator", "augment_generator_fake",
    "augment_discriminator_fake", "augment_discriminator_real",
    "augment_r1_real"])
IterationDraws.__doc__ = """Every random draw of one training iteration:
`generator` and `discriminator` are the `FakeDraws` of the G and D phases;
the `augment_*` fields are `augment.AugmentParams` of each discriminator
call (None without augmentation): the fakes of the G phase, the fakes and
the reals of the D phase, and the reals of the R1 phase."""


def replica_slice():
    """(replica index, replicas) of the current replica context."""
    context = tf.distribute.get_replica_context()
    if context is None:
        return 0, 1
    return context.replica_id_in_sync_group, context.num_replicas_in_sync


def step_seed(seed, step, purpose):
    """The stateless seed of draw `purpose` at training `step`."""
    return tf.stack([tf.constant(seed, tf.int64), step * 8 + purpose])


def check_class_frequencies(frequencies, num_classes):
    """`frequencies` as floats (one per class, not all zero), or None."""
    if frequencies is None:
        return None
    frequencies = [validation.check_float("class_frequencies", f, 0.0)
                   for f in frequencies]
    if len(frequencies) != num_classes or not sum(frequencies) > 0:
        raise ValueError(
            f"`class_frequencies` must hold one non-negative number per "
            f"class ({num_classes}), not all zero; got {frequencies}.")
    return frequencies


def label_logits(class_frequencies, num_classes):
    """[1, num_classes] log class frequencies (uniform for None)."""
    frequencies = class_frequencies or [1.0] * num_classes
    return np.log(np.maximum(np.asarray(frequencies, np.float64),
                             1e-30))[None].astype(np.float32)


def draw_fakes(generator, seed, batch, class_frequencies=None):
    """`FakeDraws` of this replica's `batch` samples for `generator`,
    drawn for the global batch from the stateless `seed`."""
    replica, replicas = replica_slice()
    total = batch * replicas
    seeds = tf.random.experimental.stateless_split(seed, 4)
    z = tf.random.stateless_normal((total, generator.z_dim), seeds[0])
    z_motion = tf.random.stateless_normal((total, generator.motion_dim),
                                          seeds[1])
    t = latents.ordered_beta_pair(
        tf.random.stateless_uniform((total, 4), seeds[2]))
    labels = None
    if generator.num_classes:
        logits = label_logits(class_frequencies, generator.num_classes)
        labels = tf.random.stateless_categorical(
            tf.constant(logits), total, seeds[3], dtype=tf.int32)[0]
    part = slice(replica * batch, (replica + 1) * batch)
    return FakeDraws(z[part], z_motion[part], t[part],
                     None if labels is None else labels[part])


def draw_augment(seed, batch, resolution):
    """`augment.AugmentParams` of this replica's `batch` samples."""
    replica, replicas = replica_slice()
    return augment.draw_params(seed, resolution, resolution,
                               replica * batch, batch, batch * replicas)


def motion_input(frames, dt):
    """[B, R, R, 7]: both frames of pairs [B, 2, R, R, 3] and a constant
    dt plane, the motion discriminator's input before DiffAugment."""
    dt_plane = tf.ones_like(frames[:, 0, ..., :1]) * tf.reshape(
        tf.cast(dt, frames.dtype), (-1, 1, 1, 1))
    return tf.concat([frames[:, 0], frames[:, 1], dt_plane], axis=-1)


def discriminator_inputs(motion, augment_params=None):
    """(motion input [B, R, R, 7], image input [B*2, R, R, 3], sample by
    sample) from a motion input: its frames augmented with
    `augment_params` unless None, its dt plane passed through untouched."""
    frames = tf.stack([motion[..., :3], motion[..., 3:6]], axis=1)
    if augment_params is not None:
        frames = augment.diff_augment(frames, augment_params)
    shape = tf.shape(frames)
    images = tf.reshape(frames, (-1, shape[2], shape[3], 3))
    return (tf.concat([frames[:, 0], frames[:, 1], motion[..., 6:]],
                      axis=-1), images)


def pair_inputs(frames, dt, augment_params=None):
    """`discriminator_inputs` of frame pairs [B, 2, R, R, 3] and their dt."""
    return discriminator_inputs(motion_input(frames, dt), augment_params)
