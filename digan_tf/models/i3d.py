"""I3D: Inception-v1 inflated to 3-D, the Kinetics-400 classifier whose
time-averaged logits are the features of FVD and KVD (design.md section 6).

Layer for layer DeepMind's `kinetics-i3d/i3d.py` at inference: SAME
padding everywhere but the final average pool, batch norm without a scale
(epsilon 1e-3) folded into the convolution, dropout off. Variable names and
shapes follow the RGB checkpoint, so weights load by name
(`digan_tf.evaluation.i3d_weights`).
"""

import keras
import numpy as np
from keras import ops

from digan_tf.layers.sublayers import building_sublayers
from digan_tf.utils import validation

CHECKPOINT_SCOPE = "RGB/inception_i3d"
BATCH_NORM_EPSILON = 1e-3
# (block, output channels of branch 0, branch 1 (1x1, 3x3), branch 2
# (1x1, 3x3), branch 3 (1x1 after a 3x3x3 max pool)).
MIXED_BLOCKS = (
    ("Mixed_3b", (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", (128, 128, 192, 32, 96, 64)),
    ("Mixed_4b", (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", (256, 160, 320, 32, 128, 128)),
    ("Mixed_5b", (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", (384, 192, 384, 48, 128, 128)),
)
# Max pools before a block: (kernel, strides), both [T, H, W].
POOL_BEFORE = {
    "Mixed_3b": ((1, 3, 3), (1, 2, 2)),  # MaxPool3d_3a_3x3
    "Mixed_4b": ((3, 3, 3), (2, 2, 2)),  # MaxPool3d_4a_3x3
    "Mixed_5b": ((2, 2, 2), (2, 2, 2)),  # MaxPool3d_5a_2x2
}
STEM = (  # (scope, output channels, kernel, strides)
    ("Conv3d_1a_7x7", 64, (7, 7, 7), (2, 2, 2)),
    ("Conv3d_2b_1x1", 64, (1, 1, 1), (1, 1, 1)),
    ("Conv3d_2c_3x3", 192, (3, 3, 3), (1, 1, 1)),
)
LOGITS_SCOPE = "Logits/Conv3d_0c_1x1"
LOGITS_POOL = (2, 7, 7)  # VALID, stride 1: needs 224x224 input frames
INPUT_SIZE = 224


def _branch_scopes(block):
    """Scopes of a block's six units, in the order of MIXED_BLOCKS' counts.
    DeepMind's code names Mixed_5b's second branch-2 unit `Conv3d_0a_3x3`
    (a typo the checkpoint keeps)."""
    second = "Conv3d_0a_3x3" if block == "Mixed_5b" else "Conv3d_0b_3x3"
    return (f"{block}/Branch_0/Conv3d_0a_1x1",
            f"{block}/Branch_1/Conv3d_0a_1x1",
            f"{block}/Branch_1/Conv3d_0b_3x3",
            f"{block}/Branch_2/Conv3d_0a_1x1",
            f"{block}/Branch_2/{second}",
            f"{block}/Branch_3/Conv3d_0b_1x1")


def _units(num_classes):
    """Every convolution as (scope, in channels, out channels, kernel,
    strides, batch norm), in network order."""
    units = []
    channels = 3
    for scope, out, kernel, strides in STEM:
        units.append((scope, channels, out, kernel, strides, True))
        channels = out
    for block, counts in MIXED_BLOCKS:
        b0, b1a, b1b, b2a, b2b, b3 = counts
        shapes = ((channels, b0, 1), (channels, b1a, 1), (b1a, b1b, 3),
                  (channels, b2a, 1), (b2a, b2b, 3), (channels, b3, 1))
        for scope, (cin, out, k) in zip(_branch_scopes(block), shapes):
            units.append((scope, cin, out, (k, k, k), (1, 1, 1), True))
        channels = b0 + b1b + b2b + b3
    units.append((LOGITS_SCOPE, channels, num_classes, (1, 1, 1),
                  (1, 1, 1), False))
    return units


def checkpoint_variable_shapes(num_classes=400):
    """{checkpoint variable name: shape} of the RGB I3D: `conv_3d/w`
    [kT, kH, kW, in, out]; `batch_norm/{beta,moving_mean,moving_variance}`
    [1, 1, 1, 1, out] (no gamma); the logits' `conv_3d/b` [out]."""
    shapes = {}
    for scope, cin, out, kernel, _, batch_norm in _units(num_classes):
        prefix = f"{CHECKPOINT_SCOPE}/{scope}"
        shapes[f"{prefix}/conv_3d/w"] = (*kernel, cin, out)
        if batch_norm:
            for name in ("beta", "moving_mean", "moving_variance"):
                shapes[f"{prefix}/batch_norm/{name}"] = (1, 1, 1, 1, out)
        else:
            shapes[f"{prefix}/conv_3d/b"] = (out,)
    return shapes


@keras.saving.register_keras_serializable(package="digan_tf")
class Unit3D(keras.layers.Layer):
    """SAME 3-D convolution, then inference batch norm without scale and a
    ReLU (`batch_norm=True`), or a biased linear convolution (False).

    Batch norm `(x - mean) / sqrt(var + eps) + beta` is folded into the
    kernel and a bias. Weights carry the checkpoint's names and shapes.

    Args:
        filters: int, output channels.
        kernel_size: 3 ints [T, H, W].
        strides: 3 ints [T, H, W]. Defaults to 1.
        batch_norm: bool, batch norm + ReLU, else bias only.
    """

    def __init__(self, filters, kernel_size, strides=(1, 1, 1),
                 batch_norm=True, **kwargs):
        super().__init__(**kwargs)
        self.filters = validation.check_int("filters", filters, 1)
        self.kernel_size = tuple(int(k) for k in kernel_size)
        self.strides = tuple(int(s) for s in strides)
        self.batch_norm = bool(batch_norm)

    def build(self, input_shape):
        stat = (1, 1, 1, 1, self.filters)
        self.w = self.add_weight(
            name="w", shape=(*self.kernel_size, input_shape[-1],
                             self.filters),
            initializer="he_normal")
        if self.batch_norm:
            self.beta = self.add_weight(name="beta", shape=stat,
                                        initializer="zeros")
            self.moving_mean = self.add_weight(
                name="moving_mean", shape=stat, initializer="zeros",
                trainable=False)
            self.moving_variance = self.add_weight(
                name="moving_variance", shape=stat, initializer="ones",
                trainable=False)
        else:
            self.b = self.add_weight(name="b", shape=(self.filters,),
                                     initializer="zeros")

    def checkpoint_weights(self):
        """{name under the unit's scope: variable}."""
        if self.batch_norm:
            return {"conv_3d/w": self.w, "batch_norm/beta": self.beta,
                    "batch_norm/moving_mean": self.moving_mean,
                    "batch_norm/moving_variance": self.moving_variance}
        return {"conv_3d/w": self.w, "conv_3d/b": self.b}

    def call(self, inputs):
        if not self.batch_norm:
            return ops.conv(inputs, self.w, strides=self.strides,
                            padding="same") + self.b
        scale = ops.rsqrt(self.moving_variance + BATCH_NORM_EPSILON)
        shift = ops.reshape(self.beta - self.moving_mean * scale, (-1,))
        x = ops.conv(inputs, self.w * scale, strides=self.strides,
                     padding="same")
        return ops.relu(x + shift)

    def compute_output_shape(self, input_shape):
        spatial = [None if n is None else -(-n // s)
                   for n, s in zip(input_shape[1:4], self.strides)]
        return (input_shape[0], *spatial, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": self.kernel_size, "strides": self.strides,
                "batch_norm": self.batch_norm}


@keras.saving.register_keras_serializable(package="digan_tf")
class I3D(keras.Model):
    """Inception-v1 I3D: videos [B, T, 224, 224, 3] in [-1, 1] -> the
    `num_classes` logits averaged over time [B, num_classes] (the tensor
    `RGB/inception_i3d/Mean:0` that reference FVD reads).

    T >= 9 (the final 2x7x7 average pool needs two time steps); 16 frames
    give one logit step, 128 frames fifteen.

    Args:
        num_classes: int, 400 for Kinetics-400.

    Example:
        i3d = I3D()
        digan_tf.evaluation.i3d_weights.load(i3d, "i3d-kinetics-400_1")
        features = i3d(videos)          # [B, 400]

    References:
        Carreira and Zisserman, "Quo Vadis, Action Recognition?", CVPR 2017
        (arXiv 1705.07750); github.com/google-deepmind/kinetics-i3d.
    """

    def __init__(self, num_classes=400, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = validation.check_int("num_classes", num_classes,
                                                1)
        # === Layers ===
        with building_sublayers(self):  # see digan_tf.layers.sublayers
            self.units = {}
            for scope, cin, out, kernel, strides, batch_norm in _units(
                    num_classes):
                unit = Unit3D(out, kernel, strides, batch_norm,
                              name=scope.replace("/", "__"),
                              dtype=self.dtype_policy)
                unit.build((None, None, None, None, cin))
                self.units[scope] = unit
            pool = dict(padding="same", dtype=self.dtype_policy)
            self.stem_pool = keras.layers.MaxPooling3D(
                (1, 3, 3), (1, 2, 2), name="MaxPool3d_2a_3x3", **pool)
            self.block_pools = {
                block: keras.layers.MaxPooling3D(kernel, strides, **pool)
                for block, (kernel, strides) in POOL_BEFORE.items()}
            self.branch_pool = keras.layers.MaxPooling3D(
                (3, 3, 3), (1, 1, 1), name="branch_3_pool", **pool)
            self.logits_pool = keras.layers.AveragePooling3D(
                LOGITS_POOL, (1, 1, 1), padding="valid", name="logits_pool",
                dtype=self.dtype_policy)

    def call(self, videos):
        x = self.units["Conv3d_1a_7x7"](videos)
        x = self.stem_pool(x)
        x = self.units["Conv3d_2c_3x3"](self.units["Conv3d_2b_1x1"](x))
        for block, _ in MIXED_BLOCKS:
            if block in self.block_pools:
                x = self.block_pools[block](x)
            b0, b1a, b1b, b2a, b2b, b3 = (self.units[s]
                                          for s in _branch_scopes(block))
            x = ops.concatenate(
                [b0(x), b1b(b1a(x)), b2b(b2a(x)), b3(self.branch_pool(x))],
                axis=-1)
        logits = self.units[LOGITS_SCOPE](self.logits_pool(x))
        # [B, T', 1, 1, C] -> squeeze space, average time -> [B, C]
        return ops.mean(ops.squeeze(logits, axis=(2, 3)), axis=1)

    def compute_output_shape(self, videos_shape):
        return (videos_shape[0], self.num_classes)

    def checkpoint_variables(self):
        """{checkpoint name: Keras variable} for every weight."""
        return {f"{CHECKPOINT_SCOPE}/{scope}/{name}": variable
                for scope, unit in self.units.items()
                for name, variable in unit.checkpoint_weights().items()}

    def randomize(self, seed=0):
        """Fixed random weights from a NumPy seed, the same on every
        machine: He-normal kernels, zero biases, batch-norm statistics
        (0, 1). For the `*_randinit` sanity metrics and tests."""
        rng = np.random.default_rng(seed)
        for name, variable in sorted(self.checkpoint_variables().items()):
            shape = tuple(variable.shape)
            if name.endswith("/w"):
                fan_in = int(np.prod(shape[:-1]))
                value = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
            elif name.endswith("moving_variance"):
                value = np.ones(shape)
            else:
                value = np.zeros(shape)
            variable.assign(value.astype(np.float32))
        return self

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}
