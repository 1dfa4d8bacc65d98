"""The DIGAN train step: updates, R1 schedule, EMA, distribution."""

import keras
import numpy as np
import pytest
import tensorflow as tf
import testing

import digan_tf
from digan_tf.training import iteration_inputs
from digan_tf.training.iteration_inputs import RealPairs


def _values(variables):
    return [v.numpy().copy() for v in variables]


def _networks(model):
    return (("g", model.generator), ("di", model.image_discriminator),
            ("dm", model.motion_discriminator))


def test_train_step_moves_every_trainable_variable():
    """One step (an R1 step) updates every trainable variable of the three
    networks: none is cut off from its loss."""
    model = testing.tiny_digan()
    before = {name: _values(net.trainable_variables)
              for name, net in _networks(model)}
    logs = model.train_step(testing.frame_pair_batch())
    # softplus losses of two discriminators: positive; R1 on: positive.
    assert float(logs["g_loss"]) > 0 and float(logs["d_loss"]) > 0
    assert float(logs["r1_penalty"]) > 0
    assert int(logs["images_seen"]) == 4
    for name, net in _networks(model):
        still = [v.path for a, v in zip(before[name], net.trainable_variables)
                 if np.array_equal(a, v.numpy())]
        assert still == [], (name, still)


def test_discriminator_steps_widen_the_real_fake_gap():
    model = testing.tiny_digan(augment=False)
    frames_1, frames_2, dt = testing.frame_pair_batch(8)
    real = RealPairs(tf.stack([frames_1, frames_2], axis=1), dt, None)
    fakes = model.draw_iteration(8).discriminator

    def gap():
        fake, fake_dt = model._generate_pairs(fakes)
        real_m, real_i = model._logits(
            *iteration_inputs.pair_inputs(real.frames, real.dt, None), None)
        fake_m, fake_i = model._logits(
            *iteration_inputs.pair_inputs(fake, fake_dt, None), None)
        return float(tf.reduce_mean(real_m) - tf.reduce_mean(fake_m)
                     + tf.reduce_mean(real_i) - tf.reduce_mean(fake_i))

    start = gap()
    for _ in range(4):
        model.discriminator_phase(real, fakes)
    assert gap() > start + 0.1


def test_ema_follows_the_formula():
    model = testing.tiny_digan()
    generator, ema = model.generator, model.ema_generator
    pairs = list(zip(ema.weights, generator.weights))
    for ema_variable, variable in pairs:
        ema_variable.assign(np.zeros(variable.shape))
        variable.assign(np.ones(variable.shape))
    model.images_seen.assign(1600)
    model.update_ema(tf.constant(4, tf.int64))
    # ema_nimg = min(4 * 10 / 32 * 1000, 1600 * 0.05) = 80
    beta = 0.5 ** (4 / 80)
    assert float(model.ema_beta(tf.constant(4, tf.int64))) == pytest.approx(
        beta)
    for ema_variable, variable in pairs:
        expected = 1.0 if not variable.trainable else 1.0 - beta
        np.testing.assert_allclose(ema_variable.numpy(), expected, rtol=1e-6)
    model.images_seen.assign(10**9)  # ramp-up over: half-life 10 kimg / 32
    assert float(model.ema_beta(tf.constant(32, tf.int64))) == pytest.approx(
        0.5 ** (32 / 10000))


class _PhaseRecorder(keras.callbacks.Callback):
    """D optimizer updates per step: 2 on R1 steps, 1 otherwise."""

    def on_train_begin(self, logs=None):
        self.iterations = [int(self.model.d_optimizer.iterations.numpy())]
        self.logs = []

    def on_train_batch_end(self, batch, logs=None):
        self.iterations.append(int(self.model.d_optimizer.iterations.numpy()))
        self.logs.append({k: float(v) for k, v in logs.items()})


@pytest.fixture(scope="module")
def fitted():
    """18 steps of graph-mode fit() on one device (what `bin/train` runs),
    so both variants of the step, with and without R1, are traced and run.
    Graph-mode fit() across replicas runs in test_train_cli's mirrored run
    (both variants: 2 steps); one device under XLA in the XLA test, below.
    Tracing under MirroredStrategy took 126 s of this fixture's 130."""
    model = testing.tiny_digan()
    frames = tf.data.Dataset.from_tensors(testing.frame_pair_batch()).repeat()
    recorder = _PhaseRecorder()
    weights = _values(model.generator.trainable_variables)
    model.fit(frames, steps_per_epoch=18, epochs=1, verbose=0, shuffle=False,
              callbacks=[recorder])
    return model, recorder, weights


@pytest.mark.slow
def test_r1_runs_on_exactly_every_16th_step(fitted):
    model, recorder, _ = fitted
    updates = np.diff(recorder.iterations)
    assert np.flatnonzero(updates == 2).tolist() == [0, 16]
    assert set(updates.tolist()) == {1, 2}
    assert int(model.step.numpy()) == 18
    assert int(model.g_optimizer.iterations.numpy()) == 18


@pytest.mark.slow
def test_fit_keeps_losses_finite_and_trains_the_generator(fitted):
    model, recorder, weights = fitted
    for logs in recorder.logs:
        assert all(np.isfinite(v) for v in logs.values()), logs
    assert recorder.logs[-1]["images_seen"] == 18 * 4
    changed = [np.abs(a - b.numpy()).max() > 0 for a, b in
               zip(weights, model.generator.trainable_variables)]
    assert all(changed)


def test_steps_per_execution_must_be_one():
    model = testing.tiny_digan()
    with pytest.raises(ValueError, match="steps_per_execution.*1"):
        model.compile(g_optimizer=keras.optimizers.Adam(),
                      d_optimizer=keras.optimizers.Adam(),
                      steps_per_execution=4)


@pytest.fixture(scope="module")
def mirrored():
    """One MirroredStrategy over two logical CPUs for the whole module: two
    strategy instances in one process can draw the same collective instance
    keys, which TensorFlow's runtime then mismatches."""
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


@pytest.mark.slow
def test_mirrored_strategy_matches_one_device(mirrored):
    """Two replicas (logical CPUs) and one device make the same update for
    the same global batch. Minibatch std is off: its groups are formed per
    replica, so it legitimately differs between the two. SGD, because
    Adam's first steps (beta1 = 0) turn float-rounding noise in near-zero
    gradients into full-size steps of either sign."""
    batch = testing.frame_pair_batch(8)
    results = []

    def state(model):
        return _values(model.generator.trainable_variables
                       + model.image_discriminator.variables
                       + model.motion_discriminator.variables
                       + model.ema_generator.variables)

    for strategy in (tf.distribute.get_strategy(), mirrored):
        with strategy.scope():
            model = testing.tiny_digan(mbstd_num_channels=0, sgd=True)
        if not results:
            results.append(state(model))  # the same seed for both
        model.run_eagerly = True
        model.fit(tf.data.Dataset.from_tensors(batch).repeat(),
                  steps_per_epoch=2, epochs=1, verbose=0, shuffle=False)
        results.append(state(model))
    assert len(tf.config.list_logical_devices("CPU")) >= 2
    start = results.pop(0)
    for single, mirrored, initial in zip(*results, start):
        np.testing.assert_allclose(mirrored - initial, single - initial,
                                   atol=1e-5, rtol=1e-4)
    # The updates compared are far above the tolerance: not a no-op step.
    moved = max(np.abs(a - b).max() for a, b in zip(results[0], start))
    assert moved > 1e-3


@pytest.mark.parametrize("policy, tolerance", [("mixed_bfloat16", 0.05),
                                               ("mixed_float16", 0.01)])
def test_mixed_precision_step_matches_float32(policy, tolerance):
    """A mixed-precision step gives the float32 step's losses within the
    half type's precision (bfloat16 keeps 8 bits of mantissa, float16 11;
    measured: float16 R1 5% off), keeps float32 variables, and under
    float16 scales the loss of both optimizers."""
    reference = testing.tiny_digan().train_step(testing.frame_pair_batch())
    keras.mixed_precision.set_dtype_policy(policy)
    try:
        model = testing.tiny_digan()
        logs = model.train_step(testing.frame_pair_batch())
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    assert model.generator.compute_dtype == policy.split("_")[1]
    assert model.generator.trainable_variables[0].dtype == "float32"
    for name in ("g_loss", "d_loss"):
        assert float(logs[name]) == pytest.approx(float(reference[name]),
                                                  rel=tolerance), name
    # R1 squares a gradient taken through half-precision activations.
    assert float(logs["r1_penalty"]) == pytest.approx(
        float(reference["r1_penalty"]), rel=0.1)
    for optimizer in (model.g_optimizer, model.d_optimizer):
        scaled = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        assert scaled == (policy == "mixed_float16")


def _weights(model):
    return [v.numpy() for v in model.generator.weights
            + model.ema_generator.weights + model.discriminator_variables]


@pytest.mark.slow
def test_xla_iterations_make_the_eager_iterations_updates():
    """An R1 iteration (G, D and R1 phases) compiled with XLA (what
    `bin/train --jit_compile` runs) makes the eager iteration's weight
    updates from the same draws, within rounding; the updates are far
    larger than the tolerance (SGD: Adam with beta1 0 would turn rounding in
    near-zero gradients into full steps). fit() itself compiles and runs
    the variant without R1. XLA makes its own random floats from the same
    seeds (README, "Training"), so the draws are made outside and passed
    in."""
    frames_1, frames_2, dt = testing.frame_pair_batch()
    real = RealPairs(tf.stack([frames_1, frames_2], axis=1), dt, None)
    updates = {}
    for jit in (False, True):
        model = testing.tiny_digan(sgd=True)
        draws = model.draw_iteration(4)
        iteration = model.train_iteration
        if jit:
            iteration = tf.function(iteration, jit_compile=True)
        before = _weights(model)
        iteration(real, draws, True)
        updates[jit] = [after - start for after, start
                        in zip(_weights(model), before)]
    for eager, xla in zip(updates[False], updates[True]):
        np.testing.assert_allclose(xla, eager, atol=1e-5, rtol=1e-3)
    assert max(np.abs(u).max() for u in updates[False]) > 1e-3

    # fit() compiles the variant without R1: the one above has been
    # compiled, and each XLA compile of this model takes 40-50 s.
    model = testing.tiny_digan()
    model.compile(g_optimizer=keras.optimizers.SGD(0.01),
                  d_optimizer=keras.optimizers.SGD(0.01), jit_compile=True)
    model.step.assign(1)  # R1 is due at step 16
    before = _weights(model)
    recorder = _PhaseRecorder()
    model.fit(tf.data.Dataset.from_tensors((frames_1, frames_2, dt)).repeat(),
              steps_per_epoch=1, epochs=1, verbose=0, shuffle=False,
              callbacks=[recorder])
    assert model.jit_compile is True
    assert np.diff(recorder.iterations).tolist() == [1]
    assert int(model.step.numpy()) == 2
    assert all(np.isfinite(v) for logs in recorder.logs
               for v in logs.values())
    moved = sum(not np.array_equal(a, b)
                for a, b in zip(_weights(model), before))
    assert moved > len(before) // 2


@pytest.mark.parametrize("order", ["authors", "d_first"])
def test_train_step_runs_the_phases_in_the_authors_order(order):
    """train_step == G phase, D phase, R1 phase, EMA with the draws of
    draw_iteration, bit for bit; the D-first order gives other weights."""
    frames_1, frames_2, dt = testing.frame_pair_batch()
    real = RealPairs(tf.stack([frames_1, frames_2], axis=1), dt, None)
    stepped = testing.tiny_digan()
    stepped.train_step((frames_1, frames_2, dt))
    manual = testing.tiny_digan()
    draws = manual.draw_iteration(4)
    phases = [
        lambda: manual.generator_phase(draws.generator,
                                       draws.augment_generator_fake),
        lambda: manual.discriminator_phase(
            real, draws.discriminator, draws.augment_discriminator_fake,
            draws.augment_discriminator_real),
    ]
    if order == "d_first":
        phases.reverse()
    for phase in phases:
        phase()
    manual.r1_phase(real, draws.augment_r1_real)
    manual.update_ema(4)
    same = all(np.array_equal(a, b) for a, b in
               zip(_weights(stepped), _weights(manual)))
    assert same == (order == "authors")


def test_generated_labels_are_drawn_from_class_frequencies():
    """Labels of generated pairs: one per sample, from the training
    videos' class frequencies, independently per phase (design.md section 4),
    not the real batch's labels."""
    keras.utils.set_random_seed(0)
    sizes = dict(testing.TRAINING_DISCRIMINATOR, num_classes=3)
    model = digan_tf.DIGAN(
        digan_tf.Generator(**dict(testing.TRAINING_GENERATOR,
                                  num_classes=3)),
        digan_tf.ImageDiscriminator(**sizes),
        digan_tf.MotionDiscriminator(**sizes),
        class_frequencies=[0, 30, 10])
    draws = model.draw_iteration(4000)
    g_labels = draws.generator.labels.numpy()
    d_labels = draws.discriminator.labels.numpy()
    for labels in (g_labels, d_labels):
        assert set(np.unique(labels)) == {1, 2}
        assert np.mean(labels == 1) == pytest.approx(0.75, abs=0.03)
    assert np.mean(g_labels != d_labels) > 0.3
    with pytest.raises(ValueError, match="class_frequencies"):
        digan_tf.DIGAN(model.generator, model.image_discriminator,
                       model.motion_discriminator, class_frequencies=[1, 2])


def test_resuming_a_checkpoint_of_another_optimizer_says_why(tmp_path):
    """A run dir written with Keras' Adam (digan_tf before the authors'
    optimizer) stops with a message naming the checkpoint and --run_dir."""
    from digan_tf import run_dir

    old = testing.tiny_digan()
    old.compile(g_optimizer=keras.optimizers.Adam(),
                d_optimizer=keras.optimizers.Adam())
    path = run_dir.make_checkpoint(old).save(str(tmp_path / "ckpt"))
    with pytest.raises(ValueError, match=r"Checkpoint .*ckpt-1.* does not fit"):
        run_dir.restore_checkpoint(
            run_dir.make_checkpoint(testing.tiny_digan()), path)
