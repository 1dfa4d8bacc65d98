"""digan_tf: DIGAN, the INR video GAN of ICLR 2022, in Keras 3 / TensorFlow.

Importing the package turns on TensorFlow's oneDNN kernels (unless
TF_ENABLE_ONEDNN_OPTS is already set): TensorFlow leaves them off on
non-Intel CPUs, where they double float32 matmul throughput. It takes effect
only if TensorFlow has not been imported yet. In our command-line tools
(which set DIGAN_TF_QUIET=1) it also hides TensorFlow's C++ log lines
(`utils/cpp_logs.py`; DIGAN_TF_CPP_LOGS=1 shows them).
"""

import os

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

if os.environ.get("DIGAN_TF_QUIET") == "1":
    # Our tools (bin/) set it: TensorFlow's C++ logs are hidden from here on.
    from digan_tf.utils import cpp_logs

    cpp_logs.install()

# The models are imported here so that `import digan_tf` registers every
# Keras class (what `keras.models.load_model` needs for a .keras file).
from digan_tf.evaluation.features import video_features  # noqa: E402
from digan_tf.models.digan import DIGAN  # noqa: E402
from digan_tf.models.generator import Generator  # noqa: E402
from digan_tf.models.image_discriminator import ImageDiscriminator  # noqa: E402,E501
from digan_tf.models.motion_discriminator import MotionDiscriminator  # noqa: E402,E501
from digan_tf.models.residual_discriminator import ResidualDiscriminator  # noqa: E402,E501
from digan_tf.version import __version__  # noqa: E402

__all__ = [
    "DIGAN",
    "Generator",
    "ImageDiscriminator",
    "MotionDiscriminator",
    "ResidualDiscriminator",
    "__version__",
    "video_features",
]
