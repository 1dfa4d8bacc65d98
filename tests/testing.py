"""Tiny configurations and shared checks for the tests."""

import keras
import numpy as np

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
