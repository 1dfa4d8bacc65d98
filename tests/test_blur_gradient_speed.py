import numpy as np
import pytest
import tensorflow as tf

from tests.testing import benchmark_module

blur_gradient_speed = benchmark_module("blur_gradient_speed")


@pytest.mark.parametrize("order", [1, 2])
def test_the_timed_blurs_compute_the_same_derivatives(order):
    """The benchmark times like with like: the code before (a Pad op and
    TensorFlow's gradient), the transposed blur after a Pad op and ours
    give the same values, gradients and R1 second order."""
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(2, 9, 7, 3)), tf.float32)
    weights = tf.constant(rng.uniform(0.5, 1.5, (2, 10, 8, 3)), tf.float32)
    row = blur_gradient_speed.time_candidates(
        blur_gradient_speed.CANDIDATES, order, x, weights, rounds=1)
    assert set(row["max_abs_difference"]) == set(
        blur_gradient_speed.CANDIDATES)
    assert max(row["max_abs_difference"].values()) < 1e-5
    assert row["median_ratio"]["TensorFlow's gradient after a Pad op"] == 1
