"""The authors' optimizer: PyTorch's Adam with StyleGAN2's lazy
regularization rescaling and their replacement of non-finite gradients
(design.md section 4).

Keras' Adam differs from PyTorch's in two ways that change every update:
it adds epsilon to `sqrt(v)` before the bias correction of v (PyTorch adds
it after), and it advances one step counter for all variables (PyTorch
keeps one per parameter and skips parameters without a gradient). DIGAN
trains with beta1 = 0 and eps = 1e-8 on gradients that are small early on,
where the two placements of eps give visibly different steps.
"""

import keras
import tensorflow as tf
from keras import ops

from digan_tf.utils import validation

# What the authors' loop puts in place of +-Inf gradients.
NONFINITE_GRADIENT_LIMIT = 1e5


def nan_to_num(gradient):
    """NaN -> 0, +Inf -> 1e5, -Inf -> -1e5; finite values unchanged (the
    authors' `nan_to_num` before every optimizer step), in six element-wise
    passes."""
    finite = tf.where(tf.math.is_nan(gradient), tf.zeros_like(gradient),
                      gradient)
    limit = tf.cast(NONFINITE_GRADIENT_LIMIT, gradient.dtype)
    return tf.where(tf.math.is_inf(finite), tf.sign(finite) * limit, finite)


def replace_nonfinite(gradient):
    """`nan_to_num`, run only when a value is not finite: the check is one
    pass, and the replacement is almost never needed. Over the R=64
    networks' 95 M parameters the check takes 66 ms and the replacement
    304 ms (benchmarks/nonfinite_replacement_speed.py). The price is two
    function graphs per variable to trace: under cProfile, fit() traced
    and ran a tiny DIGAN's two graph variants in 93 s with the cond and
    79 s without it."""
    return tf.cond(tf.reduce_all(tf.math.is_finite(gradient)),
                   lambda: tf.identity(gradient), lambda: nan_to_num(gradient))


@keras.saving.register_keras_serializable(package="digan_tf")
class TorchAdam(keras.optimizers.Optimizer):
    """Adam as `torch.optim.Adam` computes it (no weight decay, no amsgrad;
    up to float rounding), with each gradient first passed through
    `replace_nonfinite`:

        m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
        p -= lr / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps)

    with `t` counted per variable: a variable left out of an `apply` call
    (no gradient) keeps its moments and its count. Under
    `LossScaleOptimizer` the replacement runs after the finiteness check, so
    float16 overflow still skips the step and lowers the scale.

    Args:
        learning_rate: float or schedule.
        beta_1, beta_2: floats in [0, 1).
        epsilon: float, added to the bias-corrected sqrt(v).
        name: str.
    """

    def __init__(self, learning_rate=0.0025, beta_1=0.0, beta_2=0.99,
                 epsilon=1e-8, name="torch_adam", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1 = validation.check_float("beta_1", beta_1, 0.0)
        self.beta_2 = validation.check_float("beta_2", beta_2, 0.0)
        for field in ("beta_1", "beta_2"):
            if getattr(self, field) >= 1.0:
                raise ValueError(f"`{field}` must be < 1; got "
                                 f"{getattr(self, field)}.")
        self.epsilon = validation.check_float("epsilon", epsilon, 0.0)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(
            var_list, ["momentum", "velocity"])
        self._steps = [
            self.add_variable(shape=(), dtype="int64",
                              name=f"{self._var_name(variable)}_step_count")
            for variable in var_list]

    @staticmethod
    def _var_name(variable):
        return variable.path.replace("/", "_").replace(":", "_")

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        step = self._steps[index]
        self.assign_add(step, ops.ones((), "int64"))
        # Bias corrections in float64, as PyTorch computes them in Python.
        t = tf.cast(step, tf.float64)
        correction_1 = 1.0 - tf.pow(tf.constant(self.beta_1, tf.float64), t)
        correction_2_sqrt = tf.sqrt(
            1.0 - tf.pow(tf.constant(self.beta_2, tf.float64), t))
        gradient = replace_nonfinite(ops.cast(gradient, variable.dtype))

        def scalar(value):
            return ops.cast(value, variable.dtype)

        # PyTorch's step, lr / c1 * m / (sqrt(v) / sqrt(c2) + eps), is
        # (lr sqrt(c2) / c1) * m / (sqrt(v) + eps sqrt(c2)): ResourceApplyAdam
        # with those two scalars (and beta powers 0, so that it adds no bias
        # correction of its own) makes the moment updates and the step one
        # fused pass over the variable, where the formula written out with
        # assigns takes nine.
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=self._momentums[index].handle,
            v=self._velocities[index].handle,
            beta1_power=scalar(0.0), beta2_power=scalar(0.0),
            lr=scalar(tf.cast(learning_rate, tf.float64) * correction_2_sqrt
                      / correction_1),
            beta1=scalar(self.beta_1), beta2=scalar(self.beta_2),
            epsilon=scalar(self.epsilon * correction_2_sqrt), grad=gradient)

    def get_config(self):
        config = super().get_config()
        config.update(beta_1=self.beta_1, beta_2=self.beta_2,
                      epsilon=self.epsilon)
        return config


def lazy_regularization_adam(learning_rate=0.0025, beta_1=0.0, beta_2=0.99,
                             epsilon=1e-8, interval=16):
    """`TorchAdam` for a network with a regularization phase every
    `interval` steps: lr * c and betas ** c with c = interval / (interval +
    1) (StyleGAN2, appendix C). The authors' loop rescales D with 16 (its R1
    phase) and G with 4 (a path-length phase that is switched off but still
    counts); `interval=0` means no rescaling."""
    interval = validation.check_int("interval", interval, 0)
    ratio = interval / (interval + 1) if interval else 1.0
    return TorchAdam(learning_rate * ratio, beta_1**ratio, beta_2**ratio,
                     epsilon=epsilon)
