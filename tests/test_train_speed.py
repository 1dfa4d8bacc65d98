"""benchmarks/train_speed.py gives each phase the matmul peak probed
around its timed calls; the floor at those peaks is the iteration's FLOPs
at them, phase by phase."""

import pytest
import tensorflow as tf

from tests.testing import benchmark_module

train_speed = benchmark_module("train_speed")


class _Model:
    """What `time_phases` reads of a model: the step it waits for."""

    step = tf.Variable(0)


def test_a_phase_peak_is_the_median_of_the_probes_around_its_calls():
    probes = iter([100.0, 300.0, 50.0, 200.0, 10.0, 30.0, 50.0, 70.0])
    calls = []
    phases = {name: (lambda name=name: calls.append(name))
              for name in ("D", "G")}
    seconds, peaks = train_speed.time_phases(phases, _Model(), 3,
                                             lambda: next(probes))
    # D: probes 100 | 300 | 50 | 200 around its three timed calls ->
    # 300, 300, 200 (the better of the two around each); G: 10 | 30 | 50
    # | 70 -> 30, 50, 70.
    assert peaks == {"D": 300.0, "G": 50.0}
    assert calls == ["D"] * 4 + ["G"] * 4  # a tracing call, then three
    assert set(seconds) == {"D", "G"} and min(seconds.values()) >= 0
    assert train_speed.time_phases(phases, _Model(), 1)[1] == {
        "D": None, "G": None}


def test_the_adjacent_floor_is_each_phase_at_its_own_peak():
    gflop = {"D": 600.0, "G": 300.0, "R1": 1600.0}
    peaks = {"D": 200.0, "G": 100.0, "R1": 160.0}
    # 3 s + 3 s + 10 s / 16: the R1 step runs once in 16 iterations.
    assert train_speed.adjacent_floor(gflop, peaks) == pytest.approx(6.625)


class _TrainFunctionModel(_Model):
    """What `time_train_function` reads of a model: its train function,
    here one that counts its calls and takes a batch from the iterator
    each time, as Keras' does."""

    def __init__(self):
        self.batches = []

    def make_train_function(self):
        return lambda iterator: self.batches.append(next(iterator))


def test_the_train_function_is_timed_after_tracing_both_variants():
    model = _TrainFunctionModel()
    probes = iter([150.0, 120.0])
    batch = (tf.zeros((2, 4, 4, 3)), tf.ones((2, 4, 4, 3)), tf.zeros(2))
    seconds, peak = train_speed.time_train_function(
        model, batch, 32, lambda: next(probes))
    # Two untimed calls (the variants with and without R1 are traced on
    # their first), then the 32 timed steps, each on the batch.
    assert len(model.batches) == 34
    assert all(float(b[1][0, 0, 0, 0]) == 1.0 for b in model.batches)
    assert peak == 150.0 and seconds >= 0  # the better probe
    assert train_speed.time_train_function(model, batch, 16)[1] is None
