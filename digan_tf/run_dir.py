"""The training run directory: its layout, the checkpoint's variable map,
cleanup of half-written saves, and reading back the EMA generator. Training
writes it; exporting, generating and evaluating read it without importing
the training stack.

    config.json            the resolved configuration (`TrainConfig`)
    generator.json         the generator's Keras config and class names
    checkpoints/ckpt-N.*   tf.train checkpoints (G, D, EMA G, optimizers,
                           step, images seen); the newest is resumed
    samples/step-N.{gif,mp4}  a fixed latent grid rendered by the EMA G
    tensorboard/           scalars and animated sample grids
    metrics.jsonl          FVD/KVD during training, one line per measure
    feature_cache/         real-clip I3D features of those measures
    demo_data/             the built-in dataset, when --data_dir=demo

With several workers only the chief writes the run dir; the others write to
temporary directories (`training.distribution.output_dir`).
"""

import glob
import json
import os

import keras
import tensorflow as tf

from digan_tf.utils.atomic_files import atomic_path

CONFIG = "config.json"
GENERATOR_CARD = "generator.json"
CHECKPOINTS = "checkpoints"
SAMPLES = "samples"
TENSORBOARD = "tensorboard"
METRICS_LOG = "metrics.jsonl"
FEATURE_CACHE = "feature_cache"
DEMO_DATA = "demo_data"


def write_config(run_dir, config_json):
    """`config.json`: the resolved configuration of the run (a dict)."""
    os.makedirs(run_dir, exist_ok=True)
    with atomic_path(os.path.join(run_dir, CONFIG)) as path:
        with open(path, "w") as f:
            json.dump(config_json, f, indent=1)


def make_checkpoint(model):
    """A checkpoint of every variable of the run, listed explicitly:
    tf.train's object graph does not follow the layer lists inside Keras 3
    models, so tracking the model object alone would miss weights (the EMA
    generator's among them). Keys are `<part>/<index>_<variable name>`,
    independent of the instance names Keras gives optimizers and layers."""
    parts = {
        "generator": model.generator.weights,
        "ema_generator": model.ema_generator.weights,
        "image_discriminator": model.image_discriminator.weights,
        "motion_discriminator": model.motion_discriminator.weights,
        "g_optimizer": model.g_optimizer.variables,
        "d_optimizer": model.d_optimizer.variables,
        "progress": [model.step, model.images_seen],
    }
    return tf.train.Checkpoint(**{
        part: checkpoint_entries(variables)
        for part, variables in parts.items()})


def restore_checkpoint(checkpoint, path, optimizers=()):
    """Restores every variable of the run from `path`, or says why not.
    The learning rates of `optimizers` stay those of this run's flags (a
    checkpoint stores them as variables; a run resumed with new
    rates must use them)."""
    rates = [(optimizer, tf.identity(optimizer.learning_rate.value))
             for optimizer in optimizers]
    try:
        checkpoint.restore(path).assert_consumed()
    except (AssertionError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0][:300]
        raise ValueError(
            f"Checkpoint '{path}' does not fit this model and its "
            f"optimizers ({first_line}). It was written with other network "
            "flags, or by a digan_tf older than its switch to the authors' "
            "Adam (optimizer state per variable); train into a new "
            "run directory.") from error
    for optimizer, rate in rates:
        optimizer.learning_rate.assign(rate)


def checkpoint_entries(variables):
    """{key: variable} of one part of a checkpoint (see `make_checkpoint`).
    """
    return {f"{i:04d}_{v.path.split('/')[-1]}": v
            for i, v in enumerate(variables)}


def write_generator_card(run_dir, generator, class_names=()):
    """`generator.json`: what rebuilding the run's generator needs without
    the dataset (its Keras config, class names); read by `bin/export` and
    `bin/generate --model=RUN_DIR`."""
    card = {"generator": keras.saving.serialize_keras_object(generator),
            "class_names": list(class_names)}
    with atomic_path(os.path.join(run_dir, GENERATOR_CARD)) as path:
        with open(path, "w") as f:
            json.dump(card, f, indent=1)


def remove_unfinished_checkpoints(directory):
    """Deletes what a killed save left behind (TensorFlow writes a
    checkpoint into `<prefix>_temp` and renames it when complete)."""
    if not tf.io.gfile.isdir(directory):
        return
    for name in tf.io.gfile.listdir(directory):
        if "_temp" in name:
            path = os.path.join(directory, name.rstrip("/"))
            if tf.io.gfile.isdir(path):
                tf.io.gfile.rmtree(path)
            else:
                tf.io.gfile.remove(path)


def load_ema_generator(run_dir, checkpoint=None):
    """(EMA `Generator`, class names, checkpoint path) of a training run:
    the generator rebuilt from `generator.json`, its weights read from the
    EMA part of the newest (or the given) checkpoint only."""
    card_path = os.path.join(run_dir, GENERATOR_CARD)
    if not os.path.isfile(card_path):
        raise FileNotFoundError(
            f"'{run_dir}' is not a training run dir: no "
            f"{GENERATOR_CARD} (written by bin/train).")
    with open(card_path) as f:
        card = json.load(f)
    generator = keras.saving.deserialize_keras_object(card["generator"])
    if checkpoint is None:
        checkpoint = tf.train.latest_checkpoint(
            os.path.join(run_dir, CHECKPOINTS))
        if checkpoint is None:
            raise FileNotFoundError(f"'{run_dir}' has no checkpoint yet.")
    elif not tf.io.gfile.exists(checkpoint + ".index"):
        raise FileNotFoundError(
            f"`checkpoint`: no checkpoint '{checkpoint}' (give the prefix, "
            "e.g. RUN/checkpoints/ckpt-500).")
    reader = tf.train.Checkpoint(
        ema_generator=checkpoint_entries(generator.weights))
    try:
        reader.read(checkpoint).expect_partial() \
            .assert_existing_objects_matched()
    except (AssertionError, ValueError) as error:
        raise ValueError(f"Checkpoint '{checkpoint}' does not match "
                         f"{card_path}: {error}") from error
    return generator, card["class_names"], checkpoint


def what_next(run_dir, data_dir):
    """Lines that say what a run wrote and the commands that use it: the
    newest samples and checkpoint, TensorBoard, export, generate and
    evaluate."""
    samples = sorted(glob.glob(os.path.join(run_dir, SAMPLES, "*.gif")))
    checkpoint = tf.train.latest_checkpoint(os.path.join(run_dir,
                                                         CHECKPOINTS))
    name = os.path.basename(os.path.normpath(run_dir))
    lines = [f"Wrote {run_dir}:"]
    if samples:
        lines.append(f"  samples      {samples[-1]} (and .mp4; "
                     f"{len(samples)} in {os.path.join(run_dir, SAMPLES)})")
    if checkpoint:
        lines.append(f"  checkpoint   {checkpoint}")
    lines += [
        f"  TensorBoard  tensorboard --logdir {os.path.join(run_dir, TENSORBOARD)}",
        "Next (re-running the same bin/train command resumes the run):",
        f"  bin/export --run_dir={run_dir} --name={name}",
        f"  bin/generate --model={run_dir} --output_dir={name}_videos",
        f"  bin/evaluate --model={run_dir} --data_dir={data_dir}",
    ]
    return lines
