"""What `bin/train` does: strategy, data, models, checkpoints, samples,
TensorBoard and the progress bar around `DIGAN.fit`.

Run dir layout:
    config.json            the resolved configuration
    generator.json         the generator's Keras config and class names
    checkpoints/ckpt-N.*   tf.train checkpoints (G, D, EMA G, optimizers,
                           step, images seen); the newest is resumed
    samples/step-N.{gif,mp4}  a fixed latent grid rendered by the EMA G
    tensorboard/           scalars and animated sample grids
    demo_data/             the built-in dataset, when --data_dir=demo

With --strategy=multi_worker only the chief writes the run dir; the other
workers write to temporary directories (see `multi_worker`).
"""

import io
import json
import math
import os

import keras
import tensorflow as tf
from PIL import Image

from digan_tf import configs
from digan_tf import generate_samples
from digan_tf import multi_worker
from digan_tf import optimizers
from digan_tf import sampling
from digan_tf import video_writer
from digan_tf.atomic_files import atomic_path
from digan_tf.data import demo_dataset
from digan_tf.data import pipelines
from digan_tf.data import tfrecord_format
from digan_tf.metrics_callback import MetricsCallback
from digan_tf.models.digan import DIGAN
from digan_tf.models.generator import Generator
from digan_tf.models.image_discriminator import ImageDiscriminator
from digan_tf.models.motion_discriminator import MotionDiscriminator
from digan_tf.progress import ProgressBar


GENERATOR_CARD = "generator.json"


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or Inf; the message names the last good
    checkpoint."""


def make_strategy(name):
    """The tf.distribute strategy for --strategy; "multi_worker" reads the
    cluster from TF_CONFIG (without it: one worker, all local devices)."""
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if os.environ.get("TF_CONFIG"):
            multi_worker.check_tf_config(os.environ["TF_CONFIG"])
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def resolve_data_dir(config, output_dir=None):
    """The prepared dataset to train on; renders the demo dataset into
    `output_dir` (default: the run dir) for --data_dir=demo: each worker
    renders the same videos (same seed) into its own directory, so workers
    never race on files. Checks that the dataset fits the config."""
    data_dir = config.data_dir
    if data_dir == configs.DEMO_DATA:
        data_dir = os.path.join(output_dir or config.run_dir, "demo_data")
        demo_dataset.write_demo_dataset(
            data_dir, config.resolution, config.clip_length,
            num_videos=config.demo_videos, seed=config.seed)
    manifest = tfrecord_format.read_manifest(data_dir)
    if manifest["resolution"] != config.resolution:
        raise ValueError(
            f"--resolution={config.resolution} but --data_dir '{data_dir}' "
            f"holds {manifest['resolution']}x{manifest['resolution']} frames."
        )
    if config.conditional:
        tfrecord_format.check_has_labels(manifest, data_dir)
    return data_dir, manifest


def build_model(config, num_classes=0, class_frequencies=None):
    """A compiled `DIGAN` for `config` (call inside the strategy scope);
    `class_frequencies`: training videos per class, from which the labels
    of generated samples are drawn."""
    sizes = dict(resolution=config.resolution, fmaps=config.fmaps,
                 channel_max=config.channel_max, num_classes=num_classes)
    model = DIGAN(
        Generator(**sizes, clip_length=config.clip_length, name="generator"),
        ImageDiscriminator(**sizes, name="image_discriminator"),
        MotionDiscriminator(**sizes, name="motion_discriminator"),
        r1_gamma=config.r1_gamma, r1_interval=config.r1_interval,
        ema_kimg=config.ema_kimg or None, ema_rampup=config.ema_rampup or None,
        augment=config.augment, seed=config.seed,
        class_frequencies=class_frequencies)
    model.compile(
        g_optimizer=optimizers.lazy_regularization_adam(
            config.g_lr, config.adam_beta1, config.adam_beta2,
            epsilon=config.adam_epsilon, interval=config.g_reg_interval),
        d_optimizer=optimizers.lazy_regularization_adam(
            config.d_lr, config.adam_beta1, config.adam_beta2,
            epsilon=config.adam_epsilon, interval=config.r1_interval),
        jit_compile=config.jit_compile, run_eagerly=config.run_eagerly)
    return model


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


def _restore(checkpoint, path, optimizers=()):
    """Restores every variable of the run from `path`, or says why not.
    The learning rates of `optimizers` stay those of this run's flags (a
    checkpoint stores them as variables; a resumed run with a new --g_lr
    or --d_lr must use it)."""
    rates = [(optimizer, tf.identity(optimizer.learning_rate.value))
             for optimizer in optimizers]
    try:
        checkpoint.restore(path).assert_consumed()
    except (AssertionError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0][:300]
        raise ValueError(
            f"--run_dir: checkpoint '{path}' does not fit this model and its "
            f"optimizers ({first_line}). It was written with other network "
            "flags, or by a digan_tf older than its switch to the authors' "
            "Adam (optimizer state per variable); train into a new "
            "--run_dir.") from error
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


def _gif_summary(tag, frames, fps, step):
    """An animated GIF in TensorBoard's image dashboard."""
    from tensorboard.plugins.image import metadata

    buffer = io.BytesIO()
    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(buffer, format="GIF", save_all=True,
                   append_images=images[1:], duration=round(1000 / fps),
                   loop=0)
    height, width = frames.shape[1:3]
    tf.summary.write(
        tag, tf.constant([str(width), str(height), buffer.getvalue()]),
        step=step, metadata=metadata.create_summary_metadata(
            display_name=tag, description="EMA generator, fixed latents"))


class TrainingMonitor(keras.callbacks.Callback):
    """Per step: NaN/Inf check, the progress bar and the preemption check;
    every --log_every steps: TensorBoard scalars (means since the last
    log); every --checkpoint_every: a checkpoint; every --sample_every:
    sample videos. Workers other than the chief (`chief=False`) take part
    in every checkpoint save (MultiWorkerMirroredStrategy saves are
    collective) but show no bar and render no samples.
    """

    def __init__(self, config, manager, writer, total_steps, global_batch,
                 chief=True):
        super().__init__()
        self.config = config
        self.manager = manager
        self.writer = writer
        self.total_steps = total_steps
        self.global_batch = global_batch
        self.chief = chief
        self.preemption = None  # a PreemptionCheckpointHandler, from train()
        self.failure = None
        self.bar = None
        self.sample_latents = None
        self.last_sample_step = None

    def on_train_begin(self, logs=None):
        step = int(self.model.step.numpy())
        self.bar = ProgressBar(
            self.total_steps * self.global_batch, "img", "train",
            initial=step * self.global_batch,
            stream=None if self.chief else io.StringIO())
        generator = self.model.ema_generator
        self.sample_latents = sampling.sample_latents(
            generator, self.config.num_samples, seed=self.config.seed)
        if step == 0:
            self.write_samples(0)

    def on_train_batch_end(self, batch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items()}
        step = int(self.model.step.numpy())
        bad = [k for k in ("g_loss", "d_loss", "r1_penalty")
               if k in logs and not math.isfinite(logs[k])]
        if bad:
            last = self.manager.latest_checkpoint or "none"
            self.failure = NonFiniteLossError(
                f"{', '.join(f'{k}={logs[k]}' for k in bad)} at step {step}; "
                f"training stopped, last good checkpoint: {last}.")
            self.model.stop_training = True
            return
        self.bar.update(self.global_batch, extra=(
            f"kimg {logs.get('images_seen', 0) / 1000:.2f} "
            f"G {logs.get('g_loss', 0):.3f} D {logs.get('d_loss', 0):.3f}"))
        if step % self.config.log_every == 0 or step == self.total_steps:
            self.write_scalars(step, logs)
        if step % self.config.checkpoint_every == 0:
            self.manager.save(checkpoint_number=step)
        if step % self.config.sample_every == 0:
            self.write_samples(step)
        if self.preemption is not None:
            self.preemption.save_checkpoint_if_preempted()

    def on_train_end(self, logs=None):
        self.bar.close()
        step = int(self.model.step.numpy())
        if self.failure is None:
            self.save_checkpoint()
            if self.last_sample_step != step:
                self.write_samples(step)
        self.writer.flush()

    def save_checkpoint(self):
        """Saves the current step unless it is saved; returns the path."""
        step = int(self.model.step.numpy())
        path = os.path.join(self.manager.directory, f"ckpt-{step}")
        if self.manager.latest_checkpoint != path:
            self.manager.save(checkpoint_number=step)
        return path

    def write_scalars(self, step, logs):
        with self.writer.as_default(step=step):
            for name, value in logs.items():
                group = "Loss" if name.endswith(("loss", "penalty")) else (
                    "Progress" if name == "images_seen" else "Logits")
                tf.summary.scalar(f"{group}/{name}", value)
            tf.summary.scalar("Progress/images_per_second", self.bar.rate())
        self.model.reset_metrics()

    def write_samples(self, step):
        """The fixed latent grid as GIF and MP4 files and in TensorBoard."""
        self.last_sample_step = step
        if not self.chief:
            return
        generator = self.model.ema_generator
        z, z_motion = self.sample_latents
        labels = generate_samples.labels_for(generator, len(z))
        timestamps = sampling.clip_timestamps(self.config.clip_length)
        videos = video_writer.to_uint8(sampling.render(
            generator, z, z_motion, timestamps, labels=labels))
        grid = video_writer.grid(videos)
        directory = os.path.join(self.config.run_dir, "samples")
        os.makedirs(directory, exist_ok=True)
        fps = max(self.config.clip_length / 2, 1)
        video_writer.write_gif(os.path.join(directory, f"step-{step:07d}.gif"),
                               grid, fps)
        video_writer.write_mp4(os.path.join(directory, f"step-{step:07d}.mp4"),
                               grid, fps)
        with self.writer.as_default():
            _gif_summary("samples", grid, fps, step)


def _write_config(config):
    os.makedirs(config.run_dir, exist_ok=True)
    with atomic_path(os.path.join(config.run_dir, "config.json")) as path:
        with open(path, "w") as f:
            json.dump(config.to_json(), f, indent=1)


def train(config):
    """Trains (or resumes) the run in `config.run_dir`; returns the model.

    Raises:
        NonFiniteLossError: a loss became NaN/Inf (last checkpoint kept).
        multi_worker.Preempted: SIGTERM; a checkpoint of the step was saved.
        multi_worker.WorkerLost: another worker of the cluster died.
    """
    keras.mixed_precision.set_dtype_policy(config.mixed_precision)
    # Created first: MultiWorkerMirroredStrategy must exist before any op.
    strategy = make_strategy(config.strategy)
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise ValueError(
            f"--batch_size={config.batch_size} (the global batch) must be "
            f"divisible by the {replicas} replicas (workers x devices).")
    chief = multi_worker.is_chief(multi_worker.cluster_resolver(strategy))
    with multi_worker.output_dir(config.run_dir, chief) as output:
        return _train(config, strategy, chief, output)


def _train(config, strategy, chief, output):
    """`train` for this worker; it writes to `output`."""
    if chief:
        _write_config(config)
    data_dir, manifest = resolve_data_dir(config, output)
    num_classes = len(manifest["class_names"]) if config.conditional else 0
    checkpoint_dir = os.path.join(config.run_dir, "checkpoints")
    if chief:
        remove_unfinished_checkpoints(checkpoint_dir)
    latest = tf.train.latest_checkpoint(checkpoint_dir)
    multi_worker.check_same_checkpoint(strategy, latest, checkpoint_dir)
    with strategy.scope():
        model = build_model(config, num_classes,
                            tfrecord_format.class_frequencies(manifest)
                            if num_classes else None)
        checkpoint = make_checkpoint(model)
        write_generator_card(output, model.generator,
                             manifest["class_names"] if num_classes else ())
        manager = tf.train.CheckpointManager(
            checkpoint, os.path.join(output, "checkpoints"),
            max_to_keep=config.keep_checkpoints)
        if latest:
            _restore(checkpoint, latest,
                     (model.g_optimizer, model.d_optimizer))
            print(f"Resumed from {latest}: step "
                  f"{int(model.step.numpy())}, images seen "
                  f"{int(model.images_seen.numpy())}, D optimizer iterations "
                  f"{int(model.d_optimizer.iterations.numpy())}", flush=True)
    dataset = strategy.distribute_datasets_from_function(
        lambda context: pipelines.frame_pair_dataset(
            data_dir, config.batch_size, config.clip_length,
            seed=config.seed, input_context=context,
            conditional=bool(num_classes)))
    start = int(model.step.numpy())
    remaining = config.total_steps - start
    if remaining <= 0:
        print(f"Nothing to do: the run is at step {start} of "
              f"{config.total_steps}.")
        return model
    writer = tf.summary.create_noop_writer()
    if chief:
        writer = tf.summary.create_file_writer(
            os.path.join(output, "tensorboard"))
    monitor = TrainingMonitor(config, manager, writer, config.total_steps,
                              config.batch_size, chief=chief)
    callbacks = [monitor]
    if config.metrics and chief:
        callbacks.append(MetricsCallback(config, data_dir, writer))
    resolver = multi_worker.cluster_resolver(strategy)
    with multi_worker.preemption_handler(
            resolver, monitor.save_checkpoint, checkpoint_dir) as handler, \
            multi_worker.reporting_lost_workers(resolver, checkpoint_dir):
        monitor.preemption = handler
        try:
            model.fit(dataset, steps_per_epoch=remaining, epochs=1,
                      verbose=0, shuffle=False, callbacks=callbacks)
        finally:
            writer.flush()
    if monitor.failure is not None:
        raise monitor.failure
    return model
