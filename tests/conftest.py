"""Test setup: quiet TensorFlow logs, one TensorFlow compute thread per
pytest-xdist worker, and import digan_tf before TensorFlow so that its
oneDNN setting applies."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if "PYTEST_XDIST_WORKER" in os.environ:
    # setup.cfg runs one worker per core. A worker's TensorFlow (and the
    # tools it starts, which inherit this) then computes on one thread:
    # two workers each spinning two threads on two cores run slower than
    # one worker alone, while half the suite is single-threaded Python
    # (TensorFlow's import, tracing) that two workers overlap.
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import digan_tf  # noqa: E402,F401  (before TensorFlow: oneDNN setting)

# isort: split

import tensorflow as tf  # noqa: E402

# Two logical CPUs, for MirroredStrategy tests (before TensorFlow starts).
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration()] * 2)
