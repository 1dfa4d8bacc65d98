"""Test setup: quiet TensorFlow logs, and import digan_tf before TensorFlow
so that its oneDNN setting applies."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import digan_tf  # noqa: E402,F401  (before TensorFlow: oneDNN setting)

# isort: split

import tensorflow as tf  # noqa: E402

# Two logical CPUs, for MirroredStrategy tests (before TensorFlow starts).
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration()] * 2)
