"""Training parity: replays iterations recorded from the authors' training
code (design.md section 9) and compares every loss term, gradient and update.

Each golden `.npz` holds the weights before one full iteration (all phases
run), every random draw of it, and what the authors' code computed; the
`.json` beside it holds the configuration, from which the models are
built here. `DIGAN_TRAIN_GOLDEN` (comma-separated .npz paths) replaces the
default goldens, so any file in this format is checked, whatever its
resolution, batch or class count.
"""

import json
import os
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

import digan_tf
from digan_tf import authors_weights
from digan_tf.layers import primitives as digan_ops
from digan_tf.training import augment
from digan_tf.training import optimizers
from digan_tf.training.iteration_inputs import FakeDraws
from digan_tf.training.iteration_inputs import IterationDraws
from digan_tf.training.iteration_inputs import RealPairs

_HERE = pathlib.Path(__file__).parent
# The project's shared goldens; tests/data holds byte-identical copies for
# checkouts without ../shared.
_SHARED = _HERE.parent.parent / "shared" / "golden"
_NAMES = ("train_r32_uncond.npz", "train_r32_cond3_augment.npz")

LOSS_RTOL = 1e-5
GRADIENT_RTOL = 1e-4  # by norm, per tensor
WEIGHT_ATOL = 1e-6
# Leaky-ReLU units whose pre-activation is this close to zero may take
# either slope in a float32 evaluation (see test_gradients_match).
KINK_RADIUS = 1e-5
KINK_CANDIDATES = 8


def _golden_paths():
    listed = os.environ.get("DIGAN_TRAIN_GOLDEN")
    if listed:
        return [pathlib.Path(p) for p in listed.split(",") if p]
    folder = _SHARED if (_SHARED / _NAMES[0]).exists() else _HERE / "data"
    return [folder / name for name in _NAMES]


class Golden:
    """One golden iteration: its arrays, config and our models, computing
    in `dtype`, loaded with its starting weights."""

    def __init__(self, path, dtype="float32"):
        self.dtype = dtype
        with np.load(path) as data:
            self.arrays = {k: data[k] for k in data.files}
        with open(path.with_suffix(".json")) as f:
            self.config = json.load(f)
        previous = keras.mixed_precision.dtype_policy()
        keras.mixed_precision.set_dtype_policy(dtype)
        try:
            self.model = _build_model(self.config)
        finally:
            keras.mixed_precision.set_dtype_policy(previous)
        self.names = list(authors_weights.named_variables(
            self.model.generator, self.model.image_discriminator,
            self.model.motion_discriminator))
        for name, variable, layout in self.names:
            variable.assign(authors_weights.from_torch_layout(self.get(name),
                                                       layout))
        ema_weights = self.model.generator.get_weights()
        self.model.ema_generator.set_weights(ema_weights)

    def get(self, key):
        """The array under `key` (floats in this golden's dtype), None if
        absent."""
        value = self.arrays.get(key)
        if value is not None and value.dtype.kind == "f":
            value = value.astype(self.dtype)
        return value

    def real(self):
        labels = self.get("in.real_labels")
        return RealPairs(self.get("in.real_frames"), self.get("in.real_dt"),
                         None if labels is None else labels.astype("int32"))

    def fakes(self, phase):
        labels = self.get(f"in.{phase}.labels")
        return FakeDraws(
            self.get(f"in.{phase}.z_content"),
            self.get(f"in.{phase}.z_motion"),
            self.get(f"in.{phase}.timestamps"),
            None if labels is None else labels.astype("int32"))

    def augment(self, phase, side):
        prefix = f"in.{phase}.augment_{side}."
        if not self.config["augment"]:
            return None
        return augment.AugmentParams(**{
            field: self.get(prefix + field)
            for field in augment.AugmentParams._fields})

    def draws(self):
        return IterationDraws(
            generator=self.fakes("gmain"),
            discriminator=self.fakes("dmain"),
            augment_generator_fake=self.augment("gmain", "fake"),
            augment_discriminator_fake=self.augment("dmain", "fake"),
            augment_discriminator_real=self.augment("dmain", "real"),
            augment_r1_real=self.augment("dreg", "real"))


def _build_model(config):
    fmaps = config["channel_base"] / 32768
    keras.utils.set_random_seed(0)
    common = dict(resolution=config["resolution"], fmaps=fmaps,
                  channel_max=config["channel_max"],
                  num_classes=config["num_classes"])
    generator = digan_tf.Generator(
        z_dim=config["z_dim"], w_dim=config["w_dim"],
        motion_dim=config["motion_dim"],
        mapping_layers=config["mapping_layers"],
        fmm_rank=config["fmm_rank"], motion_sigma=config["motion_sigma"],
        **common)
    discriminators = [
        cls(mbstd_group_size=config["mbstd_group_size"], **common)
        for cls in (digan_tf.ImageDiscriminator,
                    digan_tf.MotionDiscriminator)]
    model = digan_tf.DIGAN(generator, *discriminators,
                           r1_gamma=config["r1_gamma"],
                           r1_interval=config["d_reg_interval"],
                           augment=config["augment"])
    optimizer_args = dict(learning_rate=config["lr"],
                          beta_1=config["betas"][0],
                          beta_2=config["betas"][1], epsilon=config["eps"])
    model.compile(
        g_optimizer=optimizers.lazy_regularization_adam(
            interval=config["g_reg_interval"], **optimizer_args),
        d_optimizer=optimizers.lazy_regularization_adam(
            interval=config["d_reg_interval"], **optimizer_args))
    return model



# Where each phase starts in the authors' iteration: {network: key prefix of
# its weights in the golden}.
_PHASE_START = {
    "gmain": {"G": "", "D": ""},
    "dmain": {"G": "out.after_gmain.", "D": ""},
    "dreg": {"D": "out.after_dmain."},
}
PHASES = tuple(_PHASE_START)
# The network each phase updates.
_PHASE_NETWORK = {"gmain": "G", "dmain": "D", "dreg": "D"}
# The phases whose gradients made the optimizer state the authors' step in
# each phase used (the D optimizer's R1 step follows its D step).
_ADAM_STEPS = {"gmain": ("gmain",), "dmain": ("dmain",),
               "dreg": ("dmain", "dreg")}


def _run_phase(golden, phase):
    """Sets the authors' weights from before `phase` and runs it; returns
    (loss terms, {authors' name: gradient in their layout})."""
    for name, variable, layout in golden.names:
        prefix = _PHASE_START[phase].get(name.split(".")[0])
        if prefix is not None:
            variable.assign(authors_weights.from_torch_layout(
                golden.get(prefix + name), layout))
    model, draws, real = golden.model, golden.draws(), golden.real()
    if phase == "gmain":
        result = model.generator_phase(draws.generator,
                                       draws.augment_generator_fake)
    elif phase == "dmain":
        result = model.discriminator_phase(
            real, draws.discriminator, draws.augment_discriminator_fake,
            draws.augment_discriminator_real)
    else:
        result = model.r1_phase(real, draws.augment_r1_real)
    by_variable = {id(v): (name, layout) for name, v, layout in golden.names}
    gradients = {}
    for variable, gradient in result["gradients"]:
        name, layout = by_variable[id(variable)]
        gradients[name] = authors_weights.to_torch_layout(
            gradient.numpy().astype(np.float64), layout)
    return np.array([float(t) for t in result["loss_terms"]]), gradients


def _weights(golden, names, prefix=""):
    return {prefix + name: authors_weights.to_torch_layout(
        variable.numpy().astype(np.float64), layout)
        for name, variable, layout in names}


def _replay(golden):
    """Runs the iteration phase by phase, each from the authors' weights
    before it (so that one phase's rounding does not carry into the next),
    with our optimizers' state carried as in a real iteration; returns what
    the golden records, under its keys."""
    out = {}
    for phase in PHASES:
        out[f"out.{phase}.loss_terms"], gradients = _run_phase(golden, phase)
        for name, gradient in gradients.items():
            out[f"out.{phase}.grad.{name}"] = gradient
        network = _PHASE_NETWORK[phase]
        out.update(_weights(
            golden, [n for n in golden.names if n[0].startswith(network)],
            f"out.after_{phase}."))
    golden.model.update_ema(golden.config["batch"])
    ema = authors_weights.named_variables(golden.model.ema_generator,
                                   golden.model.image_discriminator,
                                   golden.model.motion_discriminator)
    for key, value in _weights(
            golden, [n for n in ema if n[0].startswith("G.")]).items():
        out["out.after_iteration.G_ema." + key[2:]] = value
    return out


class KinkSwitch:
    """Replaces `digan_tf.layers.primitives.leaky_relu` (every layer's
    activation, `lrelu` included) to record every pre-activation and to
    give chosen units the other slope (0.2 <-> 1) in the backward pass."""

    def __init__(self, monkeypatch):
        self.inputs, self.flip = [], None  # flip: (call index, flat index)
        original = digan_ops.leaky_relu

        def leaky_relu(x):
            call = len(self.inputs)
            self.inputs.append(np.abs(x.numpy()).ravel())
            if self.flip is None or self.flip[0] != call:
                return original(x)
            mask = np.zeros(x.shape.num_elements(), bool)
            mask[self.flip[1]] = True
            mask = tf.constant(mask.reshape(x.shape))

            @tf.custom_gradient
            def flipped(x):
                def gradient(dy):
                    slope = tf.where(x > 0, 1.0, 0.2)
                    slope = tf.cast(tf.where(mask, 1.2 - slope, slope),
                                    dy.dtype)
                    return dy * slope
                return original(x), gradient

            return flipped(x)

        monkeypatch.setattr(digan_ops, "leaky_relu", leaky_relu)

    def nearest_to_zero(self, count):
        """(|pre-activation|, call, flat index) of the `count` units
        nearest to the kink in the recorded calls."""
        units = []
        for call, values in enumerate(self.inputs):
            for index in np.argsort(values)[:count]:
                units.append((values[index], call, int(index)))
        return sorted(units)[:count]


@pytest.fixture(scope="module", params=_golden_paths(),
                ids=lambda path: path.stem)
def golden_path(request):
    return request.param


@pytest.fixture(scope="module")
def replayed(golden_path):
    """(golden arrays and config, our float32 replay, our float64 replay).
    """
    golden = Golden(golden_path)
    return golden, _replay(golden), _replay(Golden(golden_path, "float64"))


def _keys(arrays, prefix):
    return sorted(k for k in arrays if k.startswith(prefix)
                  and not k.endswith("resample_filter"))


def _relative(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30)


def _weight_tolerance(reference):
    """WEIGHT_ATOL, plus two float32 spacings of each weight: the mapping
    layers (lr_mult 0.01) store their weights 100x larger, up to ~60, where
    float32 values are 3.8e-6 apart."""
    return WEIGHT_ATOL + 2 * np.spacing(np.abs(reference).astype(np.float32))


def _worst(ours, reference):
    """(largest relative error by norm, its tensor) over `reference`."""
    return max((_relative(ours[k], reference[k]), k) for k in reference)


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_loss_terms_match(replayed, phase, dtype):
    golden, ours = replayed[0], replayed[1 if dtype == "float32" else 2]
    key = f"out.{phase}.loss_terms"
    assert golden.arrays[key].shape == ours[key].shape
    np.testing.assert_allclose(ours[key], golden.arrays[key], rtol=LOSS_RTOL,
                               atol=0)


@pytest.mark.parametrize("phase", PHASES)
def test_gradients_match(replayed, golden_path, phase, monkeypatch):
    """Every parameter that got a gradient in the authors' phase gets one
    here (and no other), each within GRADIENT_RTOL by norm, in float64
    (our maths) and float32 (what trains).

    Where a phase is off by more, the reason must be a leaky-ReLU kink:
    a unit whose pre-activation lies within float32 rounding of zero takes
    the slope 1 or 0.2 depending on the order of float32 sums, and every
    gradient upstream of it moves. The authors' augmented golden has one
    in its G phase (a generator unit at 7.7e-7): their float32 took the
    other slope, all G gradients move by 2.9e-4, and with that one unit
    flipped our float64 gradients match theirs to 1.4e-6. The test searches
    the KINK_CANDIDATES units nearest to zero (each within KINK_RADIUS) for
    one whose flip brings float64 within GRADIENT_RTOL; float32 may take
    either slope at such units, so its bound is GRADIENT_RTOL plus twice
    the largest change one flip makes."""
    golden, ours, exact = replayed
    prefix = f"out.{phase}.grad."
    assert _keys(ours, prefix) == _keys(golden.arrays, prefix)
    assert _keys(exact, prefix) == _keys(golden.arrays, prefix)
    reference = {k[len(prefix):]: golden.arrays[k]
                 for k in _keys(golden.arrays, prefix)}
    ours = {name: ours[prefix + name] for name in reference}
    exact = {name: exact[prefix + name] for name in reference}
    error, worst = max(_worst(ours, reference), _worst(exact, reference))
    if error <= GRADIENT_RTOL:
        return
    switch = KinkSwitch(monkeypatch)
    kinked = Golden(golden_path, "float64")
    _run_phase(kinked, phase)
    flips = []
    for size, call, index in switch.nearest_to_zero(KINK_CANDIDATES):
        assert size < KINK_RADIUS, (
            f"{worst} is off by {error:.2e} and no leaky-ReLU unit is "
            f"within {KINK_RADIUS} of its kink to explain it.")
        switch.inputs, switch.flip = [], (call, index)
        flipped = _run_phase(kinked, phase)[1]
        switch.flip = None
        flips.append((_worst(flipped, reference)[0],
                      _worst(flipped, exact)[0]))
    explained, effect = min(flips)[0], max(change for _, change in flips)
    assert explained <= GRADIENT_RTOL, (
        f"{worst} is off by {error:.2e}; flipping any one of the "
        f"{KINK_CANDIDATES} units nearest to a kink leaves {explained:.2e}.")
    assert _worst(ours, reference)[0] <= GRADIENT_RTOL + 2 * effect


def test_optimizers_reproduce_the_authors_updates(golden_path):
    """Our optimizers (PyTorch's Adam, the lazy-regularization rescaling of
    both G and D, the step count across the D and R1 phases) applied to the
    authors' gradients give the authors' weights after every phase."""
    golden = Golden(golden_path)
    model = golden.model
    for phase in PHASES:
        network = _PHASE_NETWORK[phase]
        names = [n for n in golden.names if n[0].startswith(network + ".")
                 and f"out.{phase}.grad.{n[0]}" in golden.arrays]
        for name, variable, layout in names:
            variable.assign(authors_weights.from_torch_layout(
                golden.get(_PHASE_START[phase][network] + name), layout))
        optimizer = model.g_optimizer if network == "G" else (
            model.d_optimizer)
        optimizer.apply(
            [authors_weights.from_torch_layout(
                golden.get(f"out.{phase}.grad.{name}"), layout)
             for name, _, layout in names],
            [variable for _, variable, _ in names])
        for name, variable, layout in names:
            reference = golden.arrays[f"out.after_{phase}.{name}"]
            error = np.abs(authors_weights.to_torch_layout(variable.numpy(), layout)
                           - reference)
            assert (error <= _weight_tolerance(reference)).all(), (
                f"{phase} {name}: off by {error.max():.2e}")


@pytest.mark.parametrize("phase", PHASES)
def test_weights_after_each_phase_match(replayed, phase):
    """Our iteration's weights after every phase (and w_avg after the G
    step) within `_weight_tolerance` of the authors', plus what the gradient
    difference of test_gradients_match is allowed to move them through the
    update rule: Adam's step lr * m / (sqrt(v_hat) + eps) moves by up to
    lr * |dg| / (sqrt(v_hat) + eps) for a gradient difference dg, which is
    far below WEIGHT_ATOL wherever gradients are well above eps, and up to
    a visible part of lr where they are near it (float32 rounding of a
    gradient of 1e-9 flips a first step of +-lr * 0.1). The update rule
    itself is exact: test_optimizers_reproduce_the_authors_updates."""
    golden, ours, _ = replayed
    prefix = f"out.after_{phase}."
    keys = _keys(golden.arrays, prefix)
    assert keys == _keys(ours, prefix)
    settings = golden.config["g_optimizer" if phase == "gmain"
                             else "d_optimizer"]
    beta_2 = settings["betas"][1]
    for key in keys:
        name = key[len(prefix):]
        error = np.abs(ours[key] - golden.arrays[key])
        steps = [s for s in _ADAM_STEPS[phase]
                 if f"out.{s}.grad.{name}" in golden.arrays]
        allowed = np.zeros_like(error)
        if steps:
            v = sum(beta_2 ** (len(steps) - 1 - i) * (1 - beta_2)
                    * golden.arrays[f"out.{s}.grad.{name}"] ** 2
                    for i, s in enumerate(steps))
            denominator = np.sqrt(v / (1 - beta_2 ** len(steps))) + (
                settings["eps"])
            difference = sum(np.abs(ours[f"out.{s}.grad.{name}"]
                                    - golden.arrays[f"out.{s}.grad.{name}"])
                             for s in steps)
            allowed = np.minimum(2 * settings["lr"] * difference
                                 / denominator, 2 * settings["lr"])
        excess = error - allowed - _weight_tolerance(golden.arrays[key])
        assert excess.max() <= 0, (
            f"{key}: off by {error.flat[excess.argmax()]:.2e} where the "
            f"gradient difference allows {allowed.flat[excess.argmax()]:.2e}")


def test_ema_and_w_avg_after_the_iteration_match(replayed):
    """The EMA generator after the iteration (here a copy, the ramp-up
    making beta 0) and its w_avg, which is G's after the D phase's
    generator ran in training mode."""
    golden, ours, _ = replayed
    prefix = "out.after_iteration.G_ema."
    keys = _keys(golden.arrays, prefix)
    assert keys == _keys(ours, prefix)
    w_avg = prefix + "mapping.w_avg"
    assert np.abs(golden.arrays[w_avg]
                  - golden.arrays["out.after_gmain.G.mapping.w_avg"]).max(
    ) > 100 * WEIGHT_ATOL  # the D phase moved it
    for key in keys:
        error = np.abs(ours[key] - golden.arrays[key])
        assert (error <= _weight_tolerance(golden.arrays[key])).all(), key


def test_bin_train_defaults_build_the_authors_optimizers(golden_path,
                                                        tmp_path):
    """What `bin/train` builds by default (TrainConfig's defaults) uses the
    authors' optimizer settings recorded in the golden: both rescaled."""
    from digan_tf.training import train_config
    from digan_tf.training import trainer

    with open(golden_path.with_suffix(".json")) as f:
        recorded = json.load(f)
    config = train_config.TrainConfig(data_dir="demo", run_dir=str(tmp_path),
                                 resolution=32, fmaps=0.0625, channel_max=16)
    model = trainer.build_model(config)
    for name, optimizer in (("g_optimizer", model.g_optimizer),
                            ("d_optimizer", model.d_optimizer)):
        assert isinstance(optimizer, optimizers.TorchAdam), name
        settings = recorded[name]
        assert float(optimizer.learning_rate) == pytest.approx(
            settings["lr"], rel=1e-6), name
        assert [optimizer.beta_1, optimizer.beta_2] == pytest.approx(
            settings["betas"], rel=1e-9), name
        assert optimizer.epsilon == settings["eps"], name
    assert (model.r1_gamma, model.r1_interval) == (
        recorded["r1_gamma"], recorded["d_reg_interval"])
    assert model.motion_discriminator.conv_clamp == 256
