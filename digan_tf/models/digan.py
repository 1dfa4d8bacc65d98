"""DIGAN's training model: generator, two discriminators, EMA generator and
the custom `train_step` of spec section 4."""

import keras
import tensorflow as tf

from digan_tf import augment
from digan_tf import losses
from digan_tf import sampling
from digan_tf import validation
from digan_tf.models.generator import Generator

# Offsets that give each random draw of a step its own stateless seed.
_D_LATENTS, _D_AUG_REAL, _D_AUG_FAKE, _R1_AUG, _G_LATENTS, _G_AUG = range(6)


def lazy_regularization_adam(learning_rate=0.0025, beta_1=0.0, beta_2=0.99,
                             epsilon=1e-8, interval=16):
    """Adam for a network regularized every `interval` steps in separate
    optimizer steps: lr * c and betas ** c with c = interval / (interval +
    1), so that the 17 updates of 16 steps move as far as 16 plain ones
    (StyleGAN2, appendix C; spec section 4)."""
    ratio = interval / (interval + 1)
    return keras.optimizers.Adam(learning_rate * ratio, beta_1**ratio,
                                 beta_2**ratio, epsilon=epsilon)


def _reduces_along_axis_0(strategy):
    """Whether Keras reduces the logs of a step as `strategy.reduce(MEAN,
    value, axis=0)`, which needs a batch axis: it does so for
    MultiWorkerMirroredStrategy across several workers (the condition of
    keras/src/backend/tensorflow/trainer.py), and a scalar fails there."""
    return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.extended._in_multi_worker_mode())


@keras.saving.register_keras_serializable(package="digan_tf")
class DIGAN(keras.Model):
    """Trains a DIGAN generator against image and motion discriminators.

    Every `train_step` on a batch of real pairs `(frame_1, frame_2, dt
    [, label])`:
    1. D step: non-saturating loss of both discriminators on real pairs and
       on pairs generated at timestamps t1 < t2 drawn from Beta(2,1) and
       Beta(1,2);
    2. on every `r1_interval`-th step (the first included), an R1 step:
       `r1_interval * r1_gamma / 2 * (|grad Dm(real)|^2 + |grad Di(real)|^2)`
       w.r.t. the augmented inputs, as its own optimizer step;
    3. G step;
    4. EMA generator update with `beta = 0.5 ** (batch / ema_nimg)`,
       `ema_nimg = min(ema_kimg * 1000, images_seen * ema_rampup)`.
    DiffAugment (color, translation) is applied to everything the
    discriminators see, the same for both frames of a pair, never to dt.

    Losses are summed per sample and divided by the global batch, so the
    update does not depend on how many replicas share the batch; every
    random draw is stateless, seeded by (`seed`, step), made for the global
    batch and sliced per replica, so one device and N replicas make the same
    update (up to the minibatch-std groups, which are per replica).

    Compile with `compile(g_optimizer=..., d_optimizer=...)`; use
    `lazy_regularization_adam` for D. `fit()` runs one step per call of the
    train function (the R1 phase is chosen per step on the host), so
    `steps_per_execution` must be 1.

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
        ema_generator: the EMA generator when restoring; None = a copy of
            `generator`.

    References:
        DIGAN (arXiv 2202.10571), section 3.2; StyleGAN2-ADA training loop.
    """

    def __init__(self, generator, image_discriminator, motion_discriminator,
                 r1_gamma=1.0, r1_interval=16, ema_kimg=None,
                 ema_rampup=0.05, augment=True, seed=0, ema_generator=None,
                 **kwargs):
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
        d_optimizer.build(self._d_variables())

    def _d_variables(self):
        return (self.image_discriminator.trainable_variables
                + self.motion_discriminator.trainable_variables)

    def call(self, z_content, z_motion, timestamps, labels=None,
             truncation_psi=1.0):
        """Frames of the EMA generator (the one to sample from)."""
        return self.ema_generator(z_content, z_motion, timestamps,
                                  labels=labels,
                                  truncation_psi=truncation_psi)

    # === Training ===

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
                "eagerly or through fit(), not inside your own tf.function.")
        return int(self.step.numpy()) % self.r1_interval == 0

    def _replica_slice(self):
        """(replica index, replicas) of the current replica context."""
        context = tf.distribute.get_replica_context()
        if context is None:
            return 0, 1
        return context.replica_id_in_sync_group, context.num_replicas_in_sync

    def _seed(self, purpose):
        return tf.stack([tf.constant(self.seed, tf.int64),
                         self.step * 8 + purpose])

    def _latents(self, batch, purpose):
        """z_content, z_motion and ordered timestamp pairs of this replica's
        samples, drawn for the global batch."""
        replica, replicas = self._replica_slice()
        total = batch * replicas
        seeds = tf.random.experimental.stateless_split(self._seed(purpose), 3)
        g = self.generator
        z = tf.random.stateless_normal((total, g.z_dim), seeds[0])
        z_motion = tf.random.stateless_normal((total, g.motion_dim),
                                              seeds[1])
        t = sampling.ordered_beta_pair(
            tf.random.stateless_uniform((total, 4), seeds[2]))
        part = slice(replica * batch, (replica + 1) * batch)
        return z[part], z_motion[part], t[part]

    def _reduce(self, per_sample):
        """Sum over this replica's samples / global batch size."""
        _, replicas = self._replica_slice()
        total = tf.cast(tf.shape(per_sample)[0] * replicas, per_sample.dtype)
        return tf.reduce_sum(per_sample) / total

    def _discriminator_inputs(self, frames, dt, purpose):
        """Augmented motion input [B, R, R, 7] and image input [B*2, R, R,
        3] (sample by sample) from frame pairs [B, 2, R, R, 3]."""
        if self.augment:
            replica, replicas = self._replica_slice()
            batch = tf.shape(frames)[0]
            frames = augment.diff_augment(frames, self._seed(purpose),
                                          offset=replica * batch,
                                          total=batch * replicas)
        shape = tf.shape(frames)
        dt_plane = tf.ones_like(frames[:, 0, ..., :1]) * tf.reshape(
            tf.cast(dt, frames.dtype), (-1, 1, 1, 1))
        motion = tf.concat([frames[:, 0], frames[:, 1], dt_plane], axis=-1)
        images = tf.reshape(frames, (-1, shape[2], shape[3], 3))
        return motion, images

    def _logits(self, motion, images, labels):
        """Motion logits [B, 1] and image logits [B, 2, 1]."""
        image_labels = None if labels is None else tf.repeat(labels, 2)
        motion_logits = self.motion_discriminator(motion, labels=labels)
        image_logits = self.image_discriminator(images, labels=image_labels)
        return motion_logits, tf.reshape(image_logits, (-1, 2, 1))

    def _apply(self, optimizer, tape, loss, variables):
        gradients = tape.gradient(optimizer.scale_loss(loss), variables)
        # Variables the loss does not reach (the output bias in the R1
        # step) are left alone, as PyTorch's Adam skips parameters
        # without a gradient.
        pairs = [(g, v) for g, v in zip(gradients, variables)
                 if g is not None]
        optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])

    def _generate_pairs(self, batch, labels, purpose, training=False):
        z, z_motion, t = self._latents(batch, purpose)
        frames = self.generator(z, z_motion, t, labels=labels,
                                training=training)
        return frames, t[:, 1] - t[:, 0]

    def _discriminator_step(self, frames, dt, labels):
        batch = tf.shape(frames)[0]
        fake, fake_dt = self._generate_pairs(batch, labels, _D_LATENTS)
        real_inputs = self._discriminator_inputs(frames, dt, _D_AUG_REAL)
        fake_inputs = self._discriminator_inputs(fake, fake_dt, _D_AUG_FAKE)
        with tf.GradientTape() as tape:
            real_motion, real_image = self._logits(*real_inputs, labels)
            fake_motion, fake_image = self._logits(*fake_inputs, labels)
            per_sample = losses.discriminator_loss(
                real_motion, real_image, fake_motion, fake_image)
            loss = self._reduce(per_sample)
        self._apply(self.d_optimizer, tape, loss, self._d_variables())
        return {"d_loss": per_sample, "motion_real": real_motion,
                "motion_fake": fake_motion, "image_real": real_image,
                "image_fake": fake_image}

    def _r1_step(self, frames, dt, labels):
        motion, images = self._discriminator_inputs(frames, dt, _R1_AUG)
        with tf.GradientTape() as tape:
            with tf.GradientTape() as inner:
                inner.watch([motion, images])
                motion_logits, image_logits = self._logits(motion, images,
                                                           labels)
            motion_grad, image_grad = inner.gradient(
                [motion_logits, image_logits], [motion, images])
            penalty = losses.r1_penalty(
                motion_grad, tf.reshape(image_grad, tf.shape(frames)))
            loss = self._reduce(
                penalty * (self.r1_gamma / 2 * self.r1_interval))
        self._apply(self.d_optimizer, tape, loss, self._d_variables())
        return {"r1_penalty": penalty}

    def _generator_step(self, batch, labels):
        with tf.GradientTape() as tape:
            fake, fake_dt = self._generate_pairs(batch, labels, _G_LATENTS,
                                                 training=True)
            inputs = self._discriminator_inputs(fake, fake_dt, _G_AUG)
            per_sample = losses.generator_loss(*self._logits(*inputs,
                                                             labels))
            loss = self._reduce(per_sample)
        self._apply(self.g_optimizer, tape, loss,
                    self.generator.trainable_variables)
        return {"g_loss": per_sample}

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

    def _update_ema(self, global_batch):
        beta = self.ema_beta(global_batch)
        for ema, weight in zip(self.ema_generator.weights,
                               self.generator.weights):
            if weight.trainable:
                ema.assign(weight + beta * (ema - weight))
            else:  # buffers (w_avg) are copied
                ema.assign(weight)

    def train_step(self, data):
        frames_1, frames_2, dt = data[0], data[1], data[2]
        labels = data[3] if len(data) > 3 else None
        frames = tf.stack([frames_1, frames_2], axis=1)  # [B, 2, R, R, 3]
        batch = tf.shape(frames)[0]
        _, replicas = self._replica_slice()
        values = self._discriminator_step(frames, dt, labels)
        if self._r1_due():
            values.update(self._r1_step(frames, dt, labels))
        values.update(self._generator_step(batch, labels))
        global_batch = tf.cast(batch * replicas, tf.int64)
        self._update_ema(global_batch)
        self.step.assign_add(1)
        self.images_seen.assign_add(global_batch)
        for name, value in values.items():
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
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("generator", "image_discriminator",
                    "motion_discriminator", "ema_generator"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
