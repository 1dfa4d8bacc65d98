"""benchmarks/train_profile.py says how long ops ran at once: with two
executor threads an op's time includes waiting for the other's work on
the shared pool, so its shares are only clean where that is near zero."""

import pytest

from tests.testing import benchmark_module

train_profile = benchmark_module("train_profile")


def test_overlap_counts_the_time_two_or_more_ops_ran_at_once():
    events = [("a:Conv2D", 0.0, 4.0), ("b:Slice", 1.0, 2.0),
              ("c:MatMul", 1.5, 3.0), ("d:Sum", 5.0, 6.0),
              ("e:Pad", 6.0, 7.0)]
    # Two or more at once from 1 to 3 (b, then c, beside a); d and e
    # only touch at 6.
    assert train_profile.overlap_seconds(events) == pytest.approx(2.0)
    assert train_profile.overlap_seconds(events[3:]) == 0.0
    assert train_profile.op_times(events + [("d:Sum", 8.0, 8.5)]) == {
        "a:Conv2D": 4.0, "b:Slice": 1.0, "c:MatMul": 1.5, "d:Sum": 1.5,
        "e:Pad": 1.0}
