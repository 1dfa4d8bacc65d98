"""Opens a generator from what users have: a `.keras` file, a training run
dir (the EMA generator of its newest or a given checkpoint), or an exported
SavedModel (a version dir or a TF Serving base path, newest version).

Every source renders through the serving computation
(`serving.signatures.GeneratorSignatures`), so one seed gives the same video from all
three."""

import json
import os

import keras
import numpy as np
import tensorflow as tf

from digan_tf import run_dir
from digan_tf.models.generator import Generator
from digan_tf.serving import export
from digan_tf.serving import signatures

KINDS = ("a .keras file", "a training run dir (with generator.json)",
         "a SavedModel dir (with saved_model.pb)",
         "a TF Serving base path (integer version dirs)")


class VideoSource:
    """Renders uint8 videos [B, T, R, R, 3] from latent codes.

    Attributes: `card` (resolution, clip_length, time_step, num_classes,
    class_names, z_dim, motion_dim, limits) and `description`.
    """

    def __init__(self, signature, card, description):
        self._signature = signature
        self.card = card
        self.description = description

    def __getattr__(self, name):
        if name in ("resolution", "clip_length", "time_step", "num_classes",
                    "class_names", "z_dim", "motion_dim", "limits"):
            return self.card[name]
        raise AttributeError(name)

    def render(self, z_content, z_motion, timestamps, labels=None,
               truncation_psi=1.0):
        inputs = dict(
            z_content=tf.constant(z_content, tf.float32),
            z_motion=tf.constant(z_motion, tf.float32),
            timestamps=tf.constant(timestamps, tf.float32),
            truncation_psi=tf.constant(
                np.reshape(np.asarray(truncation_psi, np.float32), [-1])))
        if self.num_classes:
            inputs["labels"] = tf.constant(labels, tf.int64)
        return self._signature(**inputs)["video"].numpy()


def from_generator(generator, class_names=(), description="",
                   jit_compile=False):
    """A `VideoSource` for a Keras `Generator` in this process."""
    limits = signatures.ServingLimits(max_batch=2 ** 20, max_frames=2 ** 30,
                                   max_pixels=2 ** 62)
    computation = signatures.GeneratorSignatures(generator, limits,
                                                 jit_compile)
    card = export.model_card(generator, class_names, limits)
    return VideoSource(computation.generate, card,
                       description or generator.name)


def load_keras_generator(path):
    """A `Generator` from a .keras file, with errors naming the file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"`path`: no such file '{path}'.")
    model = keras.models.load_model(path, safe_mode=True)
    if not isinstance(model, Generator):
        raise ValueError(
            f"`path`: '{path}' holds a {type(model).__name__}, expected a "
            "digan_tf Generator.")
    return model


def load_generator(path, checkpoint=None):
    """A Keras `Generator` from a .keras file or a run dir (its EMA
    generator)."""
    if os.path.isdir(path):
        return run_dir.load_ema_generator(path, checkpoint)[0]
    return load_keras_generator(path)


def open_saved_model(path):
    """A `VideoSource` for an exported SavedModel; only TensorFlow runs."""
    loaded = tf.saved_model.load(path)
    with open(os.path.join(path, export.CARD_PATH)) as f:
        card = json.load(f)
    # Exports older than the four signatures had truncation_psi in
    # serving_default (as an input with a default).
    signature = loaded.signatures.get("generate",
                                      loaded.signatures.get("serving_default"))
    return VideoSource(signature, card, f"SavedModel {path}")


def open_source(path, checkpoint=None, jit_compile=False):
    """A `VideoSource` for any of `KINDS`."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"`path`: no such file or directory "
                                f"'{path}'.")
    if os.path.isfile(path):
        if not path.endswith(".keras"):
            raise ValueError(f"`path`: '{path}' is a file but not .keras; "
                             f"expected one of: {', '.join(KINDS)}.")
        return from_generator(load_keras_generator(path), (), path,
                              jit_compile)
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return open_saved_model(path)
    versions = export.versions(path)
    if versions:
        return open_saved_model(os.path.join(path, str(versions[-1])))
    if os.path.isfile(os.path.join(path, run_dir.GENERATOR_CARD)):
        generator, class_names, used = run_dir.load_ema_generator(
            path, checkpoint)
        return from_generator(generator, class_names,
                              f"run {path} ({used})", jit_compile)
    raise ValueError(f"`path`: '{path}' is none of: {', '.join(KINDS)}.")
