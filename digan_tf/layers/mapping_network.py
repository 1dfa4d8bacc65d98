"""StyleGAN mapping network: latent (and label) to style."""

import keras
from keras import ops

from digan_tf.layers import primitives as digan_ops
from digan_tf.layers.equalized_dense import EqualizedDense
from digan_tf.layers.sublayers import building_sublayers
from digan_tf.utils import validation


@keras.saving.register_keras_serializable(package="digan_tf")
class MappingNetwork(keras.layers.Layer):
    """Normalized latent (and embedded label) through an lrelu MLP.

    `z` is scaled to unit second moment; a class label, one-hot, goes through
    a dense embedding, is normalized the same way and concatenated after `z`;
    then `num_layers` dense lrelu layers with `lr_multiplier` (design.md section
    2). With `w_avg_beta` set, a running average of the output is tracked in
    training for the truncation trick. The conditional discriminator uses the
    same network with `z_dim=0` to map labels (design.md section 3).

    Call `layer(z, labels=None, training=None)` with `z` [B, z_dim] (or None
    when `z_dim == 0`) and integer `labels` [B]; returns [B, w_dim].

    Args:
        z_dim: int, latent size, 0 for a label-only mapping.
        w_dim: int, output size.
        num_layers: int, dense layers (2 in DIGAN's generator).
        num_classes: int, 0 for unconditional.
        lr_multiplier: float, learning-rate multiplier (0.01).
        w_avg_beta: float or None, decay of the tracked average of w
            (0.995), None to not track it.

    References:
        Karras et al., "A Style-Based Generator Architecture for GANs",
        section 2.
    """

    def __init__(
        self,
        z_dim,
        w_dim,
        num_layers=2,
        num_classes=0,
        lr_multiplier=0.01,
        w_avg_beta=0.995,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.z_dim = validation.check_int("z_dim", z_dim, 0)
        self.w_dim = validation.check_int("w_dim", w_dim, 1)
        self.num_layers = validation.check_int("num_layers", num_layers, 1)
        self.num_classes = validation.check_int("num_classes", num_classes, 0)
        if self.z_dim == 0 and self.num_classes == 0:
            raise ValueError(
                "MappingNetwork needs `z_dim` > 0 or `num_classes` > 0; got "
                "both 0."
            )
        self.lr_multiplier = validation.check_float(
            "lr_multiplier", lr_multiplier, exclusive_minimum=0.0
        )
        self.w_avg_beta = (
            None if w_avg_beta is None
            else validation.check_float("w_avg_beta", w_avg_beta, 0.0)
        )
        with building_sublayers(self):  # see digan_tf.layers.sublayers
            self.embed = None
            features = self.z_dim
            if self.num_classes:
                self.embed = EqualizedDense(
                    self.w_dim, name="embed", dtype=self.dtype_policy
                )
                self.embed.build((None, self.num_classes))
                features += self.w_dim
            self.dense_layers = []
            for index in range(self.num_layers):
                layer = EqualizedDense(
                    self.w_dim,
                    lr_multiplier=self.lr_multiplier,
                    activation="lrelu",
                    name=f"fc{index}",
                    dtype=self.dtype_policy,
                )
                layer.build((None, features))
                features = self.w_dim
                self.dense_layers.append(layer)
            self.w_avg = None
            if self.w_avg_beta is not None:
                self.w_avg = self.add_weight(
                    name="w_avg",
                    shape=(self.w_dim,),
                    initializer="zeros",
                    trainable=False,
                    # Replicas assign their own batch means: keep their mean.
                    aggregation="mean",
                )

    def call(self, z, labels=None, training=None):
        parts = []
        if self.z_dim:
            parts.append(digan_ops.normalize_2nd_moment(z))
        if self.num_classes:
            one_hot = ops.one_hot(
                ops.cast(labels, "int32"), self.num_classes,
                dtype=self.compute_dtype,
            )
            parts.append(digan_ops.normalize_2nd_moment(self.embed(one_hot)))
        x = parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=1)
        for layer in self.dense_layers:
            x = layer(x)
        if training and self.w_avg is not None:
            batch_mean = ops.cast(ops.mean(x, axis=0), self.w_avg.dtype)
            self.w_avg.assign(
                batch_mean + self.w_avg_beta * (self.w_avg - batch_mean)
            )
        return x

    def truncate(self, w, truncation_psi):
        """`w_avg + psi * (w - w_avg)`; `truncation_psi` scalar or [B]."""
        psi = ops.cast(truncation_psi, w.dtype)
        if len(psi.shape) == 1:
            psi = ops.expand_dims(psi, 1)
        w_avg = ops.cast(self.w_avg, w.dtype)
        # psi = 1 returns w exactly (not w_avg + (w - w_avg)), so a served
        # default psi of 1 matches an untruncated call bit for bit.
        return ops.where(psi == 1, w, w_avg + psi * (w - w_avg))

    def compute_output_shape(self, z_shape, labels_shape=None):
        return (z_shape[0] if z_shape else labels_shape[0], self.w_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            z_dim=self.z_dim,
            w_dim=self.w_dim,
            num_layers=self.num_layers,
            num_classes=self.num_classes,
            lr_multiplier=self.lr_multiplier,
            w_avg_beta=self.w_avg_beta,
        )
        return config
