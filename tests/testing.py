"""Tiny configurations and shared checks for the tests."""

import importlib.util
import pathlib
import sys

import keras
import numpy as np

import digan_tf
from digan_tf.training.optimizers import lazy_regularization_adam

# A generator small enough for CPU tests that still has every kind of block:
# a first block, blocks on the 32x32 grid, and an up-sampling block with its
# own coordinate embedding and an extra layer.
TINY_GENERATOR = dict(
    resolution=64,
    fmaps=0.03125,
    channel_max=16,
    z_dim=16,
    w_dim=16,
    motion_dim=16,
    num_frequencies=8,
    extra_layer_resolutions=(64,),
)
TINY_DISCRIMINATOR = dict(resolution=32, fmaps=0.03125, channel_max=64)
# The networks of the training tests (R=32).
TRAINING_GENERATOR = dict(resolution=32, fmaps=0.0625, channel_max=16,
                          z_dim=16, w_dim=16, motion_dim=16,
                          num_frequencies=8)
TRAINING_DISCRIMINATOR = dict(resolution=32, fmaps=0.0625, channel_max=16)


def tiny_digan(seed=0, r1_interval=16, mbstd_num_channels=1, sgd=False,
               **kwargs):
    """A compiled R=32 DIGAN with weights drawn from `seed` (call inside a
    strategy scope to distribute it). `sgd`: plain SGD(0.01) instead of
    the authors' Adam, for comparisons across devices (Adam's first steps
    with beta1 = 0 turn rounding noise in near-zero gradients into
    full-size steps of either sign)."""
    keras.utils.set_random_seed(seed)
    model = digan_tf.DIGAN(
        digan_tf.Generator(**TRAINING_GENERATOR),
        digan_tf.ImageDiscriminator(mbstd_num_channels=mbstd_num_channels,
                                    **TRAINING_DISCRIMINATOR),
        digan_tf.MotionDiscriminator(mbstd_num_channels=mbstd_num_channels,
                                     **TRAINING_DISCRIMINATOR),
        r1_interval=r1_interval, seed=seed, **kwargs)
    if sgd:
        model.compile(g_optimizer=keras.optimizers.SGD(0.01),
                      d_optimizer=keras.optimizers.SGD(0.01))
    else:
        model.compile(g_optimizer=lazy_regularization_adam(interval=4),
                      d_optimizer=lazy_regularization_adam(
                          interval=r1_interval))
    return model


def frame_pair_batch(batch=4, seed=0):
    """Random (frame_1, frame_2, dt) of `batch` R=32 samples."""
    rng = np.random.default_rng(seed)
    frames = rng.uniform(-1, 1, (2, batch, 32, 32, 3)).astype(np.float32)
    dt = rng.uniform(0, 1, batch).astype(np.float32)
    return frames[0], frames[1], dt


def latents(batch, generator, seed=0):
    """Fixed (z_content, z_motion) for `generator`."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((batch, generator.z_dim)).astype(np.float32)
    z_motion = rng.standard_normal((batch, generator.motion_dim))
    return z, z_motion.astype(np.float32)


def assert_config_round_trip(obj):
    """get_config -> from_config gives an object with the same config, and
    the config survives Keras' JSON serialization."""
    config = obj.get_config()
    clone = obj.__class__.from_config(config)
    assert clone.get_config() == config
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(obj)
    )
    assert type(restored) is type(obj)
    assert restored.get_config() == config


def benchmark_module(name):
    """The module `benchmarks/<name>.py` (benchmarks are scripts, not a
    package)."""
    path = pathlib.Path(__file__).parents[1] / "benchmarks" / f"{name}.py"
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))  # scripts import their siblings
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
