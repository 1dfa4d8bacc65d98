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
from digan_tf.layers.coordinate_view import TRAINED
from digan_tf.models.generator import Generator
from digan_tf.serving import export
from digan_tf.serving import signatures

KINDS = ("a .keras file", "a training run dir (with generator.json)",
         "a SavedModel dir (with saved_model.pb)",
         "a TF Serving base path (integer version dirs)")


class VideoSource:
    """Renders uint8 videos [B, T, R, R, 3] from latent codes.

    Attributes: `card` (resolution, clip_length, time_step, num_classes,
    class_names, z_dim, w_dim, motion_dim, limits; w_dim is None for
    exports older than it) and `description`.
    """

    def __init__(self, signature, card, description, style_signature=None):
        self._signature = signature
        self._style_signature = style_signature
        self.card = card
        self.description = description

    def __getattr__(self, name):
        if name in ("resolution", "clip_length", "time_step", "num_classes",
                    "class_names", "z_dim", "w_dim", "motion_dim",
                    "limits"):
            return self.card.get(name)
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

    def render_styles(self, w, z_motion, timestamps):
        """`render` from styles `w` [B, w_dim] (`generate_from_style`)."""
        if self._style_signature is None:
            raise ValueError(
                f"`codes`: {self.description} was exported without the "
                "generate_from_style signature; re-export it, or use codes "
                "fitted with --latent_space=z.")
        return self._style_signature(
            w=tf.constant(w, tf.float32),
            z_motion=tf.constant(z_motion, tf.float32),
            timestamps=tf.constant(timestamps, tf.float32))["video"].numpy()


def from_generator(generator, class_names=(), description="",
                   jit_compile=False, view=TRAINED):
    """A `VideoSource` for a Keras `Generator` in this process, rendering
    `view` (a `CoordinateView`)."""
    limits = signatures.ServingLimits(max_batch=2 ** 20, max_frames=2 ** 30,
                                   max_pixels=2 ** 62)
    computation = signatures.GeneratorSignatures(generator, limits,
                                                 jit_compile, view)
    card = export.model_card(generator, class_names, limits, view)
    return VideoSource(computation.generate, card,
                       description or generator.name,
                       computation.generate_from_style)


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


def open_saved_model(path, view=TRAINED):
    """A `VideoSource` for an exported SavedModel; only TensorFlow runs.
    Its view is fixed at export: asking for another is a ValueError."""
    with open(os.path.join(path, export.CARD_PATH)) as f:
        card = json.load(f)
    exported = (card.get("resolution_scale", 1.0),
                card.get("field_of_view", 1.0))
    if view != TRAINED and exported != (view.resolution_scale,
                                        view.field_of_view):
        raise ValueError(
            f"`resolution_scale`, `field_of_view`: the SavedModel '{path}' "
            f"renders resolution_scale={exported[0]:g}, field_of_view="
            f"{exported[1]:g}; re-export it with bin/export "
            "--resolution_scale/--field_of_view, or give a .keras file or "
            "run dir.")
    loaded = tf.saved_model.load(path)
    # Exports older than the four signatures had truncation_psi in
    # serving_default (as an input with a default).
    signature = loaded.signatures.get("generate",
                                      loaded.signatures.get("serving_default"))
    return VideoSource(signature, card, f"SavedModel {path}",
                       loaded.signatures.get("generate_from_style"))


def open_source(path, checkpoint=None, jit_compile=False, view=TRAINED):
    """A `VideoSource` for any of `KINDS`, rendering `view` (an exported
    SavedModel renders the view it was exported with)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"`path`: no such file or directory "
                                f"'{path}'.")
    if os.path.isfile(path):
        if not path.endswith(".keras"):
            raise ValueError(f"`path`: '{path}' is a file but not .keras; "
                             f"expected one of: {', '.join(KINDS)}.")
        return from_generator(load_keras_generator(path), (), path,
                              jit_compile, view)
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return open_saved_model(path, view)
    versions = export.versions(path)
    if versions:
        return open_saved_model(os.path.join(path, str(versions[-1])), view)
    if os.path.isfile(os.path.join(path, run_dir.GENERATOR_CARD)):
        generator, class_names, used = run_dir.load_ema_generator(
            path, checkpoint)
        return from_generator(generator, class_names,
                              f"run {path} ({used})", jit_compile, view)
    raise ValueError(f"`path`: '{path}' is none of: {', '.join(KINDS)}.")
