"""Test setup: quiet TensorFlow logs, and import digan_tf before TensorFlow
so that its oneDNN setting applies."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import digan_tf  # noqa: E402,F401
