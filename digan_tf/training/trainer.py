"""What `bin/train` does: the strategy, the data, the models, the run
directory (`digan_tf.run_dir`) and the callbacks around `DIGAN.fit`.
"""

import os

import keras
import tensorflow as tf

from digan_tf import run_dir
from digan_tf.data import demo_dataset
from digan_tf.data import pipelines
from digan_tf.data import tfrecord_format
from digan_tf.evaluation import distances
from digan_tf.evaluation import protocol
from digan_tf.models.digan import DIGAN
from digan_tf.models.generator import Generator
from digan_tf.models.image_discriminator import ImageDiscriminator
from digan_tf.models.motion_discriminator import MotionDiscriminator
from digan_tf.training import distribution
from digan_tf.training import initial_weights
from digan_tf.training import optimizers
from digan_tf.training import train_config
from digan_tf.training.callbacks import MetricsCallback
from digan_tf.training.callbacks import NonFiniteLossError  # noqa: F401
from digan_tf.training.callbacks import TrainingMonitor


def resolve_data_dir(config, output_dir=None):
    """The prepared dataset to train on; renders the demo dataset into
    `output_dir` (default: the run dir) when `data_dir` is "demo": each worker
    renders the same videos (same seed) into its own directory, so workers
    never race on files. Checks that the dataset fits the config."""
    data_dir = config.data_dir
    if data_dir == train_config.DEMO_DATA:
        data_dir = os.path.join(output_dir or config.run_dir, run_dir.DEMO_DATA)
        demo_dataset.write_demo_dataset(
            data_dir, config.resolution, config.clip_length,
            num_videos=config.demo_videos, seed=config.seed)
    manifest = tfrecord_format.read_manifest(data_dir)
    if manifest["resolution"] != config.resolution:
        raise ValueError(
            f"`resolution`={config.resolution} but `data_dir` '{data_dir}' "
            f"holds {manifest['resolution']}x{manifest['resolution']} frames."
        )
    if config.conditional:
        tfrecord_format.check_has_labels(manifest, data_dir)
    return data_dir, manifest


def _networks(config, num_classes, initial=None):
    """{part: model} of a new run: built from the flags, or copies of the
    `initial` networks (`initial_weights.load_networks`)."""
    if initial:
        copies = {part: initial_weights.rebuilt(initial[part], part)
                  for part in ("image_discriminator", "motion_discriminator")}
        for part in ("generator", "ema_generator"):
            copies[part] = initial_weights.rebuilt(
                initial[part], part, clip_length=config.clip_length)
        return copies
    sizes = dict(resolution=config.resolution, fmaps=config.fmaps,
                 channel_max=config.channel_max, num_classes=num_classes)
    return {
        "generator": Generator(**sizes, z_dim=config.z_dim,
                               w_dim=config.w_dim,
                               motion_dim=config.motion_dim,
                               fourier_scale=config.fourier_scale,
                               clip_length=config.clip_length,
                               name="generator"),
        "ema_generator": None,  # DIGAN copies the generator
        "image_discriminator": ImageDiscriminator(
            **sizes, name="image_discriminator"),
        "motion_discriminator": MotionDiscriminator(
            **sizes, name="motion_discriminator"),
    }


def build_model(config, num_classes=0, class_frequencies=None,
                initial=None):
    """A compiled `DIGAN` for `config` (call inside the strategy scope);
    `class_frequencies`: training videos per class, from which the labels
    of generated samples are drawn; `initial`: networks to start from
    (`initial_weights.load_networks`) instead of random ones. Random
    weights are drawn from `config.seed`, so a seed fixes the whole run."""
    keras.utils.set_random_seed(config.seed)
    networks = _networks(config, num_classes, initial)
    model = DIGAN(
        networks["generator"], networks["image_discriminator"],
        networks["motion_discriminator"],
        ema_generator=networks["ema_generator"],
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


def train(config):
    """Trains (or resumes) the run in `config.run_dir`; returns the model.

    Raises:
        NonFiniteLossError: a loss became NaN/Inf (last checkpoint kept).
        distribution.Preempted: SIGTERM; a checkpoint of the step was saved.
        distribution.WorkerLost: another worker of the cluster died.
    """
    keras.mixed_precision.set_dtype_policy(config.mixed_precision)
    # Created first: MultiWorkerMirroredStrategy must exist before any op.
    strategy = distribution.make_strategy(config.strategy)
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise ValueError(
            f"`batch_size`={config.batch_size} (the global batch) must be "
            f"divisible by the {replicas} replicas (workers x devices).")
    chief = distribution.is_chief(distribution.cluster_resolver(strategy))
    with distribution.output_dir(config.run_dir, chief) as output:
        return _train(config, strategy, chief, output)


def _train(config, strategy, chief, output):
    """`train` for this worker; it writes to `output`."""
    if chief:
        run_dir.write_config(config.run_dir, config.to_json())
    data_dir, manifest = resolve_data_dir(config, output)
    num_classes = len(manifest["class_names"]) if config.conditional else 0
    checkpoint_dir = os.path.join(config.run_dir, run_dir.CHECKPOINTS)
    if chief:
        run_dir.remove_unfinished_checkpoints(checkpoint_dir)
    latest = tf.train.latest_checkpoint(checkpoint_dir)
    distribution.check_same_checkpoint(strategy, latest, checkpoint_dir)
    initial = None
    if config.init_from and not latest:  # a resumed run has its own state
        initial = initial_weights.load_networks(config.init_from)
        initial_weights.check_fits(initial, config.init_from,
                                   config.resolution, num_classes)
    with strategy.scope():
        model = build_model(config, num_classes,
                            tfrecord_format.class_frequencies(manifest)
                            if num_classes else None, initial)
        checkpoint = run_dir.make_checkpoint(model)
        run_dir.write_generator_card(output, model.generator,
                             manifest["class_names"] if num_classes else ())
        manager = tf.train.CheckpointManager(
            checkpoint, os.path.join(output, run_dir.CHECKPOINTS),
            max_to_keep=config.keep_checkpoints)
        if latest:
            run_dir.restore_checkpoint(checkpoint, latest,
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
            os.path.join(output, run_dir.TENSORBOARD))
    monitor = TrainingMonitor(
        manager, writer, config.run_dir, config.total_steps,
        config.batch_size, config.log_every, config.checkpoint_every,
        config.sample_every, config.num_samples, config.seed,
        config.clip_length, chief=chief)
    callbacks = [monitor]
    if config.metrics and chief:
        protocol.check_long_enough(
            data_dir, distances.parse_metric_names(config.metrics))
        callbacks.append(MetricsCallback(
            data_dir, config.metrics, config.metrics_videos,
            config.metrics_every_kimg, config.run_dir, writer,
            i3d_weights=config.i3d_weights or None, seed=config.seed))
    resolver = distribution.cluster_resolver(strategy)
    with distribution.preemption_handler(
            resolver, monitor.save_checkpoint, checkpoint_dir) as handler, \
            distribution.reporting_lost_workers(resolver, checkpoint_dir):
        monitor.preemption = handler
        try:
            model.fit(dataset, steps_per_epoch=remaining, epochs=1,
                      verbose=0, shuffle=False, callbacks=callbacks)
        finally:
            writer.flush()
    if monitor.failure is not None:
        raise monitor.failure
    return model
