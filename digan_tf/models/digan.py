"""DIGAN's training model: generator, two discriminators, EMA generator and
the custom `train_step` of design.md section 4."""

import keras
import tensorflow as tf

from digan_tf.models.generator import Generator
from digan_tf.training import distribution
from digan_tf.training import ema
from digan_tf.training import iteration_inputs as inputs
from digan_tf.training import joint_batch
from digan_tf.training import losses
from digan_tf.utils import validation


@keras.saving.register_keras_serializable(package="digan_tf")
class DIGAN(keras.Model):
    """Trains a DIGAN generator against image and motion discriminators,
    one iteration as the authors' training loop runs it (design.md section 4).

    Every `train_step` on real pairs `(frame_1, frame_2, dt[, label])`
runs `generator_phase`, `discriminator_phase`, on every `r1_interval`-th
step (the first included) `r1_phase`, then `update_ema`; each method says
what it computes. Generated pairs are conditioned on labels drawn per phase
from `class_frequencies`; DiffAugment (color, translation) transforms both
frames of a pair alike and never dt.

    Losses are summed per sample and divided by the global batch, and every
    random draw is stateless, made for the global batch and sliced per
    replica (`training.iteration_inputs`), so one device and N replicas
    make the same update (up to the per-replica minibatch-std groups).
    `train_iteration(real, draws, with_r1)` runs an iteration with explicit
    `IterationDraws`: that is how the authors' recorded iterations are
    replayed and how a run can be debugged.

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
        self.class_frequencies = inputs.check_class_frequencies(
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

    def draw_iteration(self, batch):
        """The `IterationDraws` that `train_step` uses at the current step
        for this replica's `batch` samples (stateless: the same numbers for
        the same seed and step)."""
        def seed(purpose):
            return inputs.step_seed(self.seed, self.step, purpose)

        def fakes(purpose):
            return inputs.draw_fakes(self.generator, seed(purpose), batch,
                                     self.class_frequencies)

        def augment_params(purpose):
            if not self.augment:
                return None
            return inputs.draw_augment(seed(purpose), batch,
                                       self.image_discriminator.resolution)

        return inputs.IterationDraws(
            generator=fakes(inputs.G_LATENTS),
            discriminator=fakes(inputs.D_LATENTS),
            augment_generator_fake=augment_params(inputs.G_AUG_FAKE),
            augment_discriminator_fake=augment_params(inputs.D_AUG_FAKE),
            augment_discriminator_real=augment_params(inputs.D_AUG_REAL),
            augment_r1_real=augment_params(inputs.R1_AUG_REAL))

    # === Training: phases ===

    def _reduce(self, per_sample):
        """Sum over this replica's samples / global batch size."""
        _, replicas = inputs.replica_slice()
        total = tf.cast(tf.shape(per_sample)[0] * replicas, per_sample.dtype)
        return tf.reduce_sum(per_sample) / total

    def _logits(self, motion, images, labels):
        """Motion logits [B, 1] and image logits [B, 2, 1]."""
        image_labels = None if labels is None else tf.repeat(labels, 2)
        motion_logits = self.motion_discriminator(motion, labels=labels)
        image_logits = self.image_discriminator(images, labels=image_labels)
        return motion_logits, tf.reshape(image_logits, (-1, 2, 1))

    def _logits_of_both(self, fake_inputs, fake_labels, real_inputs,
                        real_labels):
        """`_logits` of the generated and of the real inputs, each
        discriminator running once on both where its minibatch-std groups
        allow it (`training.joint_batch`: the same values, half the ops)."""
        image_labels = [None if labels is None else tf.repeat(labels, 2)
                        for labels in (fake_labels, real_labels)]
        motion = self._discriminate_both(
            self.motion_discriminator, fake_inputs[0], real_inputs[0],
            fake_labels, real_labels)
        images = self._discriminate_both(
            self.image_discriminator, fake_inputs[1], real_inputs[1],
            *image_labels)
        return [(motion_logits, tf.reshape(image_logits, (-1, 2, 1)))
                for motion_logits, image_logits in zip(motion, images)]

    @staticmethod
    def _discriminate_both(discriminator, fake, real, fake_labels,
                           real_labels):
        groups = None
        if fake.shape[0] == real.shape[0]:
            groups = joint_batch.group_count(
                fake.shape[0], discriminator.mbstd_group_size,
                discriminator.mbstd_num_channels)
        if groups is None:
            return (discriminator(fake, labels=fake_labels),
                    discriminator(real, labels=real_labels))
        labels = None if fake_labels is None else joint_batch.join(
            fake_labels, real_labels, groups)
        return joint_batch.split(discriminator(
            joint_batch.join(fake, real, groups), labels=labels), groups)

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
            seen = inputs.pair_inputs(fake, fake_dt, augment_fake)
            per_sample = losses.generator_loss(*self._logits(
                *seen, fakes.labels))
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
        fake_inputs = inputs.pair_inputs(fake, fake_dt, augment_fake)
        real_inputs = inputs.pair_inputs(real.frames, real.dt,
                                                 augment_real)
        with tf.GradientTape() as tape:
            (fake_motion, fake_image), (real_motion, real_image) = (
                self._logits_of_both(fake_inputs, fakes.labels, real_inputs,
                                     real.labels))
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
        motion_input = inputs.motion_input(real.frames, real.dt)
        with tf.GradientTape() as tape:
            with tf.GradientTape(persistent=True) as inner:
                inner.watch(motion_input)
                motion, images = inputs.discriminator_inputs(motion_input,
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
        return ema.ema_beta(global_batch, self.images_seen, self.ema_kimg,
                            self.ema_rampup)

    def update_ema(self, global_batch):
        """The EMA generator moves towards the generator (`ema.update`)."""
        ema.update(self.ema_generator, self.generator,
                   self.ema_beta(global_batch))

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
        _, replicas = inputs.replica_slice()
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
        real = inputs.RealPairs(tf.stack([frames_1, frames_2], axis=1), dt, labels)
        draws = self.draw_iteration(tf.shape(frames_1)[0])
        results = self.train_iteration(real, draws, self._r1_due())
        for result in results.values():
            for name, value in result.items():
                if name in self.trackers:
                    self.trackers[name].update_state(value)
        logs = {name: tracker.result()
                for name, tracker in self.trackers.items()}
        logs["images_seen"] = tf.identity(self.images_seen)
        if distribution.logs_need_batch_axis(
                tf.distribute.get_strategy()):
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
