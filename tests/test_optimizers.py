"""The authors' optimizer: PyTorch's Adam, per-parameter step counts,
non-finite gradients replaced, lazy-regularization rescaling."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from digan_tf.training import optimizers


def torch_adam_reference(steps, lr, beta_1, beta_2, eps, value):
    """PyTorch's Adam (torch/optim/adam.py, single-tensor path) in NumPy
    float64 on one parameter: `steps` is its list of gradients, None where
    it got none (skipped: moments and step count unchanged)."""
    m = v = 0.0
    t = 0
    value = np.array(value, np.float64)
    for gradient in steps:
        if gradient is None:
            continue
        g = np.nan_to_num(np.asarray(gradient, np.float64), nan=0.0,
                          posinf=1e5, neginf=-1e5)
        t += 1
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g * g
        step_size = lr / (1 - beta_1 ** t)
        denominator = np.sqrt(v) / np.sqrt(1 - beta_2 ** t) + eps
        value = value - step_size * m / denominator
    return value


@pytest.mark.parametrize("graph", [False, True])
def test_replace_nonfinite_matches_numpy(graph):
    replace = optimizers.replace_nonfinite
    if graph:
        replace = tf.function(replace)
    mixed = np.array([np.nan, np.inf, -np.inf, 3e5, -2.5, 0.0], np.float32)
    finite = np.array([[3e5, -2.5], [0.0, 1e-30]], np.float32)
    for values in (mixed, finite, mixed[1:2], mixed[:1]):
        np.testing.assert_array_equal(
            replace(tf.constant(values)).numpy(),
            np.nan_to_num(values, nan=0.0, posinf=1e5, neginf=-1e5))


@pytest.mark.parametrize("beta_1", [0.0, 0.9])
def test_torch_adam_matches_pytorch_formula_with_per_variable_steps(beta_1):
    rng = np.random.default_rng(0)
    # Small gradients, where eps placement matters most, and a NaN / Inf.
    schedule = {
        "a": [rng.normal(0, 1e-7, 5), rng.normal(0, 1e-7, 5),
              rng.normal(0, 1e-2, 5), rng.normal(0, 1e-7, 5)],
        "b": [rng.normal(0, 1e-3, 5), None, None,
              np.array([np.nan, np.inf, -np.inf, 1e-8, -1.0])],
    }
    start = {name: rng.normal(0, 1, 5) for name in schedule}
    variables = {name: keras.Variable(start[name].astype(np.float32),
                                      name=name) for name in schedule}
    optimizer = optimizers.TorchAdam(0.002, beta_1, 0.99, epsilon=1e-8)
    optimizer.build(list(variables.values()))
    for step in range(4):
        pairs = [(schedule[n][step], variables[n]) for n in schedule
                 if schedule[n][step] is not None]
        optimizer.apply([tf.constant(g, tf.float32) for g, _ in pairs],
                        [v for _, v in pairs])
    for name, variable in variables.items():
        expected = torch_adam_reference(schedule[name], 0.002, beta_1, 0.99,
                                        1e-8, start[name].astype(np.float32))
        np.testing.assert_allclose(variable.numpy(), expected, rtol=0,
                                   atol=1e-6, err_msg=name)
    # "b" skipped two of the four steps: its count is 2, not 4.
    counts = sorted(int(s.numpy()) for s in optimizer._steps)
    assert counts == [2, 4]


def test_keras_adam_differs_where_gradients_are_small():
    """Why TorchAdam exists: Keras' eps placement moves a first step with
    |g| ~ eps by a visible fraction of lr."""
    gradient = np.full(3, 1e-8)
    expected = torch_adam_reference([gradient], 0.002, 0.0, 0.99, 1e-8,
                                    np.zeros(3))
    keras_variable = keras.Variable(np.zeros(3, np.float32))
    keras.optimizers.Adam(0.002, 0.0, 0.99, epsilon=1e-8).apply(
        [tf.constant(gradient, tf.float32)], [keras_variable])
    assert np.abs(keras_variable.numpy() - expected).max() > 1e-4


def test_lazy_regularization_rescales_lr_and_betas():
    d = optimizers.lazy_regularization_adam(0.0025, 0.0, 0.99, interval=16)
    assert float(d.learning_rate) == pytest.approx(0.0025 * 16 / 17)
    assert d.beta_2 == pytest.approx(0.99 ** (16 / 17))
    g = optimizers.lazy_regularization_adam(0.0025, 0.0, 0.99, interval=4)
    assert float(g.learning_rate) == pytest.approx(0.002)
    assert g.beta_2 == pytest.approx(0.9919919678228657)
    plain = optimizers.lazy_regularization_adam(0.0025, 0.0, 0.99,
                                                interval=0)
    assert float(plain.learning_rate) == pytest.approx(0.0025)
    assert plain.beta_2 == pytest.approx(0.99)


def test_loss_scaling_still_skips_overflowing_steps():
    """Under LossScaleOptimizer a non-finite gradient skips the step and
    lowers the scale (float16 overflow), instead of being replaced."""
    variable = keras.Variable(np.ones(2, np.float32))
    optimizer = keras.optimizers.LossScaleOptimizer(optimizers.TorchAdam())
    optimizer.build([variable])
    scale = float(optimizer.dynamic_scale.numpy())
    optimizer.apply([tf.constant([np.inf, 1.0], tf.float32)], [variable])
    np.testing.assert_array_equal(variable.numpy(), [1.0, 1.0])
    assert float(optimizer.dynamic_scale.numpy()) < scale


def test_config_round_trip_and_bad_arguments():
    optimizer = optimizers.TorchAdam(0.001, 0.5, 0.9, epsilon=1e-6)
    clone = optimizers.TorchAdam.from_config(optimizer.get_config())
    assert (clone.beta_1, clone.beta_2, clone.epsilon) == (0.5, 0.9, 1e-6)
    with pytest.raises(ValueError, match="beta_2"):
        optimizers.TorchAdam(beta_2=1.0)
    with pytest.raises(ValueError, match="interval"):
        optimizers.lazy_regularization_adam(interval=-1)
