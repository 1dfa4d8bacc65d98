"""DIGAN's training model: generator, two discriminators, EMA generator and
the custom `train_step` of design.md section 4."""

import collections

import keras
import numpy as np
import tensorflow as tf

from digan_tf.generation import latents
from digan_tf.models.generator import Generator
from digan_tf.training import augment
from digan_tf.training import losses
from digan_tf.utils import validation

# Offsets that give each random draw of a step its own stateless seed.
(_G_LATENTS, _G_AUG_FAKE, _D_LATENTS, _D_AUG_FAKE, _D_AUG_REAL,
 _R1_AUG_REAL) = range(6)

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


def _reduces_along_axis_0(strategy):
    """Whether Keras reduces the logs of a step as `strategy.reduce(MEAN,
    value, axis=0)`, which needs a batch axis: it does so for
    MultiWorkerMirroredStrategy across several workers (the condition of
    keras/src/backend/tensorflow/trainer.py), and a scalar fails there."""
    return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.extended._in_multi_worker_mode())


@keras.saving.register_keras_serializable(package="digan_tf")
class DIGAN(keras.Model):
    """Trains a DIGAN generator against image and motion discriminators,
    one iteration as the authors' training loop runs it (design.md section 4).

    Every `train_step` on a batch of real pairs `(frame_1, frame_2, dt
    [, label])`:
    1. G phase: non-saturating loss of both discriminators on pairs
       generated at timestamps t1 < t2 drawn from Beta(2,1) and Beta(1,2);
    2. D phase: the same loss of both discriminators on newly generated
       pairs and on the real pairs;
    3. on every `r1_interval`-th step (the first included), an R1 phase:
       `r1_interval * r1_gamma / 2 * (|grad Dm|^2 + |grad Di|^2)` on the
       reals, the motion gradient w.r.t. the input before DiffAugment and
       the image gradient w.r.t. the augmented frames, as its own optimizer
       step;
    4. EMA generator update with `beta = 0.5 ** (batch / ema_nimg)`,
       `ema_nimg = min(ema_kimg * 1000, images_seen * ema_rampup)`.
    The generator runs in training mode in both the G and D phases, so its
    `w_avg` moves twice per iteration. Generated pairs are conditioned on
    labels drawn per phase from `class_frequencies`, not on the real
    batch's labels. DiffAugment (color, translation) is applied to
    everything the discriminators see, the same for both frames of a pair,
    never to dt.

    Losses are summed per sample and divided by the global batch, so the
    update does not depend on how many replicas share the batch; every
    random draw is stateless, seeded by (`seed`, step), made for the global
    batch and sliced per replica, so one device and N replicas make the same
    update (up to the minibatch-std groups, which are per replica).

    `train_iteration(real, draws)` runs one iteration with explicit draws
    (an `IterationDraws`) instead of random ones, and each phase is a
    public method returning its loss terms and gradients: that is how the
    authors' recorded iterations are replayed (tests/
    test_official_training.py) and how a run can be debugged.

    Compile with `compile(g_optimizer=..., d_optimizer=...)`, normally
    `optimizers.lazy_regularization_adam` with intervals 4 (G) and 16 (D)
    as the authors do. `fit()` runs one step per call of the train function
    (the R1 phase is chosen per step on the host), so `steps_per_execution`
    must be 1.

    Args:
        generator: a `Generator`.
        image_discriminator: an `ImageDiscriminator`.
        motion_discriminator: a `MotionDiscriminator`.
        r1_gamma: float, R1 weight (1.0).
        r1_interval: int, steps between R1 steps (16).
        ema_kimg: float or None, EMA half-life in thousands of videos;
            None = global batch * 10 / 32.
        ema_rampup: float or None, EMA ramp-up (0.05); None = off.
        augment: bool, DiffAugment "color,translation" (True).
        seed: int, seed of every random draw of the training steps.
        class_frequencies: list of floats or None, for conditional models
            the number (or share) of training videos of each class, from
            which the labels of generated samples are drawn; None = uniform.
        ema_generator: the EMA generator when restoring; None = a copy of
            `generator`.

    References:
        DIGAN (arXiv 2202.10571), section 3.2; StyleGAN2-ADA training loop.
    """

    def __init__(self, generator, image_discriminator, motion_discriminator,
                 r1_gamma=1.0, r1_interval=16, ema_kimg=None,
                 ema_rampup=0.05, augment=True, seed=0,
                 class_frequencies=None, ema_generator=None, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.image_discriminator = image_discriminator
        self.motion_discriminator = motion_discriminator
        self.r1_gamma = validation.check_float("r1_gamma", r1_gamma, 0.0)
        self.r1_interval = validation.check_int("r1_interval", r1_interval, 1)
        self.ema_kimg = None if ema_kimg is None else validation.check_float(
            "ema_kimg", ema_kimg, exclusive_minimum=0.0)
        self.ema_rampup = None if ema_rampup is None else (
            validation.check_float("ema_rampup", ema_rampup,
                                   exclusive_minimum=0.0))
        self.augment = bool(augment)
        self.seed = validation.check_int("seed", seed, 0)
        self.class_frequencies = self._check_class_frequencies(
            class_frequencies, generator.num_classes)
        if ema_generator is None:
            ema_generator = Generator.from_config(generator.get_config())
            ema_generator.set_weights(generator.get_weights())
        self.ema_generator = ema_generator
        self.ema_generator.trainable = False
        self.step = self.add_weight(
            shape=(), dtype="int64", initializer="zeros", trainable=False,
            aggregation="only_first_replica", name="step")
        self.images_seen = self.add_weight(
            shape=(), dtype="int64", initializer="zeros", trainable=False,
            aggregation="only_first_replica", name="images_seen")
        self.trackers = {name: keras.metrics.Mean(name=name) for name in (
            "g_loss", "d_loss", "r1_penalty", "motion_real", "motion_fake",
            "image_real", "image_fake")}
        self._r1_phase = None  # set while a train function variant traces
        self.built = True

    @staticmethod
    def _check_class_frequencies(frequencies, num_classes):
        if frequencies is None:
            return None
        frequencies = [validation.check_float("class_frequencies", f, 0.0)
                       for f in frequencies]
        if len(frequencies) != num_classes or not sum(frequencies) > 0:
            raise ValueError(
                f"`class_frequencies` must hold one non-negative number per "
                f"class ({num_classes}), not all zero; got {frequencies}.")
        return frequencies

    @property
    def metrics(self):
        return list(self.trackers.values())

    def compile(self, g_optimizer, d_optimizer, steps_per_execution=1,
                **kwargs):
        if steps_per_execution != 1:
            raise ValueError(
                "DIGAN picks the R1 phase per step: `steps_per_execution` "
                f"must be 1; got {steps_per_execution}.")
        if self.dtype_policy.name == "mixed_float16":
            g_optimizer, d_optimizer = (
                opt if isinstance(opt, keras.optimizers.LossScaleOptimizer)
                else keras.optimizers.LossScaleOptimizer(opt)
                for opt in (g_optimizer, d_optimizer))
        # Keras' own `optimizer` is the generator's (its iterations count
        # steps); D's is used alongside it.
        super().compile(optimizer=g_optimizer, **kwargs)
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        # Built now, inside the caller's strategy scope (not in fit()).
        g_optimizer.build(self.generator.trainable_variables)
        d_optimizer.build(self.discriminator_variables)

    @property
    def discriminator_variables(self):
        """Trainable variables of both discriminators (image, then motion),
        the ones the D optimizer updates."""
        return (self.image_discriminator.trainable_variables
                + self.motion_discriminator.trainable_variables)

    def call(self, z_content, z_motion, timestamps, labels=None,
             truncation_psi=1.0):
        """Frames of the EMA generator (the one to sample from)."""
        return self.ema_generator(z_content, z_motion, timestamps,
                                  labels=labels,
                                  truncation_psi=truncation_psi)

    # === Training: the train function ===

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Nothing to build: every network and optimizer is built by the
        constructor and `compile`. Keras' TensorFlow trainer would pull a
        batch and `strategy.reduce` the whole (frame_1, frame_2, dt) tuple,
        which MultiWorkerMirroredStrategy rejects (keras-team/keras#20585).
        """

    def make_train_function(self, force=False):
        """Two traced variants, with and without the R1 phase; each call
        of the returned function runs one step of the one that is due."""
        if self.train_function is not None and not force:
            return self.train_function
        variants = {}
        for with_r1 in (False, True):
            super().make_train_function(force=True)
            variants[with_r1] = self.train_function
        host_step = [None]

        def train_function(iterator):
            if host_step[0] is None:
                host_step[0] = int(self.step.numpy())
            with_r1 = host_step[0] % self.r1_interval == 0
            self._r1_phase = with_r1  # read by train_step while tracing
            try:
                logs = variants[with_r1](iterator)
            finally:
                self._r1_phase = None
            host_step[0] += 1
            return logs

        self.train_function = train_function
        return train_function

    def _r1_due(self):
        if self._r1_phase is not None:
            return self._r1_phase
        if not tf.executing_eagerly():
            raise RuntimeError(
                "DIGAN.train_step decides the R1 phase on the host: call it "
                "eagerly or through fit(), not inside your own tf.function; "
                "train_iteration(..., with_r1=...) takes it as an argument.")
        return int(self.step.numpy()) % self.r1_interval == 0

    # === Training: random draws ===

    def _replica_slice(self):
        """(replica index, replicas) of the current replica context."""
        context = tf.distribute.get_replica_context()
        if context is None:
            return 0, 1
        return context.replica_id_in_sync_group, context.num_replicas_in_sync

    def _seed(self, purpose):
        return tf.stack([tf.constant(self.seed, tf.int64),
                         self.step * 8 + purpose])

    def _draw_fakes(self, batch, purpose):
        """`FakeDraws` of this replica's samples, drawn for the global
        batch."""
        replica, replicas = self._replica_slice()
        total = batch * replicas
        seeds = tf.random.experimental.stateless_split(self._seed(purpose), 4)
        g = self.generator
        z = tf.random.stateless_normal((total, g.z_dim), seeds[0])
        z_motion = tf.random.stateless_normal((total, g.motion_dim),
                                              seeds[1])
        t = latents.ordered_beta_pair(
            tf.random.stateless_uniform((total, 4), seeds[2]))
        labels = None
        if g.num_classes:
            frequencies = self.class_frequencies or [1.0] * g.num_classes
            logits = np.log(np.maximum(np.asarray(frequencies, np.float64),
                                       1e-30))[None].astype(np.float32)
            labels = tf.random.stateless_categorical(
                tf.constant(logits), total, seeds[3], dtype=tf.int32)[0]
        part = slice(replica * batch, (replica + 1) * batch)
        return FakeDraws(z[part], z_motion[part], t[part],
                         None if labels is None else labels[part])

    def _draw_augment(self, batch, purpose):
        if not self.augment:
            return None
        replica, replicas = self._replica_slice()
        resolution = self.image_discriminator.resolution
        return augment.draw_params(self._seed(purpose), resolution,
                                   resolution, replica * batch, batch,
                                   batch * replicas)

    def draw_iteration(self, batch):
        """The `IterationDraws` that `train_step` uses at the current step
        for this replica's `batch` samples (stateless: the same numbers for
        the same seed and step)."""
        return IterationDraws(
            generator=self._draw_fakes(batch, _G_LATENTS),
            discriminator=self._draw_fakes(batch, _D_LATENTS),
            augment_generator_fake=self._draw_augment(batch, _G_AUG_FAKE),
            augment_discriminator_fake=self._draw_augment(batch, _D_AUG_FAKE),
            augment_discriminator_real=self._draw_augment(batch, _D_AUG_REAL),
            augment_r1_real=self._draw_augment(batch, _R1_AUG_REAL))

    # === Training: phases ===

    def _reduce(self, per_sample):
        """Sum over this replica's samples / global batch size."""
        _, replicas = self._replica_slice()
        total = tf.cast(tf.shape(per_sample)[0] * replicas, per_sample.dtype)
        return tf.reduce_sum(per_sample) / total

    @staticmethod
    def _motion_input(frames, dt):
        """[B, R, R, 7]: both frames and a constant dt plane."""
        dt_plane = tf.ones_like(frames[:, 0, ..., :1]) * tf.reshape(
            tf.cast(dt, frames.dtype), (-1, 1, 1, 1))
        return tf.concat([frames[:, 0], frames[:, 1], dt_plane], axis=-1)

    def _discriminator_inputs(self, frames, dt, augment_params):
        """Motion input [B, R, R, 7] and image input [B*2, R, R, 3] (sample
        by sample) from frame pairs [B, 2, R, R, 3], augmented with
        `augment_params` unless None."""
        return self._augmented_inputs(self._motion_input(frames, dt),
                                      augment_params)

    @staticmethod
    def _augmented_inputs(motion_input, augment_params):
        """`_discriminator_inputs` of a motion input [B, R, R, 7]: its frames
        augmented, its dt plane passed through untouched."""
        frames = tf.stack([motion_input[..., :3], motion_input[..., 3:6]],
                          axis=1)
        if augment_params is not None:
            frames = augment.diff_augment(frames, augment_params)
        shape = tf.shape(frames)
        images = tf.reshape(frames, (-1, shape[2], shape[3], 3))
        motion = tf.concat([frames[:, 0], frames[:, 1], motion_input[..., 6:]],
                           axis=-1)
        return motion, images

    def _logits(self, motion, images, labels):
        """Motion logits [B, 1] and image logits [B, 2, 1]."""
        image_labels = None if labels is None else tf.repeat(labels, 2)
        motion_logits = self.motion_discriminator(motion, labels=labels)
        image_logits = self.image_discriminator(images, labels=image_labels)
        return motion_logits, tf.reshape(image_logits, (-1, 2, 1))

    def _apply(self, optimizer, tape, loss, variables, zero_unreached=False):
        """Gradients of `loss` and the optimizer step; returns the
        (variable, gradient) pairs that were applied. Variables the loss
        does not reach get a zero gradient with `zero_unreached`, else
        they are left out (PyTorch's Adam skips them)."""
        gradients = tape.gradient(optimizer.scale_loss(loss), variables)
        if zero_unreached:
            gradients = [tf.zeros_like(v) if g is None else g
                         for v, g in zip(variables, gradients)]
        pairs = [(v, g) for v, g in zip(variables, gradients)
                 if g is not None]
        optimizer.apply([g for _, g in pairs], [v for v, _ in pairs])
        return pairs

    def _generate_pairs(self, fakes):
        """Generated pairs [B, 2, R, R, 3] and their dt; the generator runs
        in training mode (w_avg moves), as in the authors' loop."""
        frames = self.generator(fakes.z_content, fakes.z_motion,
                                fakes.timestamps, labels=fakes.labels,
                                training=True)
        return frames, fakes.timestamps[:, 1] - fakes.timestamps[:, 0]

    def generator_phase(self, fakes, augment_fake=None):
        """The G step on generated pairs `fakes` (a `FakeDraws`), the
        discriminators seeing them augmented with `augment_fake`.

        Returns a dict: `loss_terms` (the G loss, as back-propagated),
        `gradients` [(variable, gradient)] and per-sample `g_loss`."""
        with tf.GradientTape() as tape:
            fake, fake_dt = self._generate_pairs(fakes)
            inputs = self._discriminator_inputs(fake, fake_dt, augment_fake)
            per_sample = losses.generator_loss(*self._logits(
                *inputs, fakes.labels))
            loss = self._reduce(per_sample)
        gradients = self._apply(self.g_optimizer, tape, loss,
                                self.generator.trainable_variables)
        return {"loss_terms": [loss], "gradients": gradients,
                "g_loss": per_sample}

    def discriminator_phase(self, real, fakes, augment_fake=None,
                            augment_real=None):
        """The D step on the `RealPairs` `real` and pairs generated from
        `fakes`. Returns `loss_terms` (the fake term, then the real term),
        `gradients`, per-sample `d_loss` and the logits."""
        fake, fake_dt = self._generate_pairs(fakes)
        fake_inputs = self._discriminator_inputs(fake, fake_dt, augment_fake)
        real_inputs = self._discriminator_inputs(real.frames, real.dt,
                                                 augment_real)
        with tf.GradientTape() as tape:
            fake_motion, fake_image = self._logits(*fake_inputs, fakes.labels)
            real_motion, real_image = self._logits(*real_inputs, real.labels)
            fake_per_sample = losses.discriminator_fake_loss(fake_motion,
                                                             fake_image)
            real_per_sample = losses.discriminator_real_loss(real_motion,
                                                             real_image)
            fake_term = self._reduce(fake_per_sample)
            real_term = self._reduce(real_per_sample)
            loss = fake_term + real_term
        gradients = self._apply(self.d_optimizer, tape, loss,
                                self.discriminator_variables)
        return {"loss_terms": [fake_term, real_term], "gradients": gradients,
                "d_loss": fake_per_sample + real_per_sample,
                "motion_real": real_motion, "motion_fake": fake_motion,
                "image_real": real_image, "image_fake": fake_image}

    def r1_phase(self, real, augment_real=None):
        """The lazy R1 step on the `RealPairs` `real`: the gradient of the
        motion logits w.r.t. the motion input before DiffAugment (frames and
        dt plane) and of the image logits w.r.t. the augmented frames, as
        the authors' code takes them. Every D variable gets a gradient (zero
        where the penalty does not reach it, like the output bias), as their
        `logits * 0` term gives. Returns `loss_terms` (the penalty times
        `r1_interval * r1_gamma / 2`), `gradients` and `r1_penalty`."""
        motion_input = self._motion_input(real.frames, real.dt)
        with tf.GradientTape() as tape:
            with tf.GradientTape(persistent=True) as inner:
                inner.watch(motion_input)
                motion, images = self._augmented_inputs(motion_input,
                                                        augment_real)
                motion_logits, image_logits = self._logits(motion, images,
                                                           real.labels)
            motion_grad = inner.gradient(motion_logits, motion_input)
            image_grad = inner.gradient(image_logits, images)
            del inner
            penalty = losses.r1_penalty(
                motion_grad, tf.reshape(image_grad, tf.shape(real.frames)))
            loss = self._reduce(
                penalty * (self.r1_gamma / 2 * self.r1_interval))
        gradients = self._apply(self.d_optimizer, tape, loss,
                                self.discriminator_variables,
                                zero_unreached=True)
        return {"loss_terms": [loss], "gradients": gradients,
                "r1_penalty": penalty}

    def ema_beta(self, global_batch):
        """EMA decay of this step, from the images seen before it."""
        batch = tf.cast(global_batch, tf.float64)
        ema_nimg = (batch * 10 / 32 if self.ema_kimg is None
                    else tf.constant(self.ema_kimg, tf.float64)) * 1000
        if self.ema_rampup is not None:
            ema_nimg = tf.minimum(
                ema_nimg,
                tf.cast(self.images_seen, tf.float64) * self.ema_rampup)
        beta = 0.5 ** (batch / tf.maximum(ema_nimg, 1e-8))
        return tf.cast(beta, tf.float32)

    def update_ema(self, global_batch):
        """The EMA generator moves towards the generator; buffers (w_avg)
        are copied."""
        beta = self.ema_beta(global_batch)
        for ema, weight in zip(self.ema_generator.weights,
                               self.generator.weights):
            if weight.trainable:
                ema.assign(weight + tf.cast(beta, ema.dtype) * (ema - weight))
            else:
                ema.assign(weight)

    def train_iteration(self, real, draws, with_r1):
        """One training iteration in the authors' order (G phase, D phase,
        R1 phase when `with_r1`, EMA), with explicit draws.

        Args:
            real: `RealPairs` of this replica.
            draws: `IterationDraws` (see `draw_iteration`).
            with_r1: Python bool, whether the R1 phase runs.

        Returns:
            {phase name: what the phase method returned}, with keys
            "generator", "discriminator" and, with R1, "r1".
        """
        batch = tf.shape(real.frames)[0]
        _, replicas = self._replica_slice()
        results = {"generator": self.generator_phase(
            draws.generator, draws.augment_generator_fake)}
        results["discriminator"] = self.discriminator_phase(
            real, draws.discriminator, draws.augment_discriminator_fake,
            draws.augment_discriminator_real)
        if with_r1:
            results["r1"] = self.r1_phase(real, draws.augment_r1_real)
        global_batch = tf.cast(batch * replicas, tf.int64)
        self.update_ema(global_batch)
        self.step.assign_add(1)
        self.images_seen.assign_add(global_batch)
        return results

    def train_step(self, data):
        frames_1, frames_2, dt = data[0], data[1], data[2]
        labels = data[3] if len(data) > 3 else None
        real = RealPairs(tf.stack([frames_1, frames_2], axis=1), dt, labels)
        draws = self.draw_iteration(tf.shape(frames_1)[0])
        results = self.train_iteration(real, draws, self._r1_due())
        for result in results.values():
            for name, value in result.items():
                if name in self.trackers:
                    self.trackers[name].update_state(value)
        logs = {name: tracker.result()
                for name, tracker in self.trackers.items()}
        logs["images_seen"] = tf.identity(self.images_seen)
        if _reduces_along_axis_0(tf.distribute.get_strategy()):
            logs = {name: tf.reshape(value, (1,))
                    for name, value in logs.items()}
        return logs

    # === Config ===

    def get_config(self):
        serialize = keras.saving.serialize_keras_object
        return {
            "name": self.name,
            "generator": serialize(self.generator),
            "image_discriminator": serialize(self.image_discriminator),
            "motion_discriminator": serialize(self.motion_discriminator),
            "ema_generator": serialize(self.ema_generator),
            "r1_gamma": self.r1_gamma,
            "r1_interval": self.r1_interval,
            "ema_kimg": self.ema_kimg,
            "ema_rampup": self.ema_rampup,
            "augment": self.augment,
            "seed": self.seed,
            "class_frequencies": self.class_frequencies,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("generator", "image_discriminator",
                    "motion_discriminator", "ema_generator"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
