from __future__ import annotations

import math

import pytest

from workers.bench.stats import summarize


def test_one_to_a_hundred() -> None:
    stats = summarize([float(i) for i in range(1, 101)])
    # numpy.percentile(range(1, 101), q) with the default linear method.
    assert stats.p50 == pytest.approx(50.5)
    assert stats.p90 == pytest.approx(90.1)
    assert stats.p95 == pytest.approx(95.05)
    assert stats.p99 == pytest.approx(99.01)
    assert stats.mean == pytest.approx(50.5)
    # sample std: sqrt(sum((i - 50.5)^2) / 99) = sqrt(841.666...)
    assert stats.std == pytest.approx(math.sqrt(841.6666666666666))
    assert (stats.min, stats.max) == (1.0, 100.0)


def test_order_of_input_does_not_matter() -> None:
    assert summarize([5.0, 1.0, 3.0, 2.0, 4.0]) == summarize([1.0, 2.0, 3.0, 4.0, 5.0])


def test_two_values_interpolate() -> None:
    stats = summarize([1.0, 3.0])
    assert stats.p50 == pytest.approx(2.0)
    assert stats.p90 == pytest.approx(2.8)
    assert stats.std == pytest.approx(math.sqrt(2.0))


def test_a_single_value_has_zero_spread() -> None:
    stats = summarize([4.2])
    assert (stats.p50, stats.p99, stats.mean, stats.min, stats.max) == (4.2, 4.2, 4.2, 4.2, 4.2)
    assert stats.std == 0.0


def test_empty_input_is_an_error() -> None:
    with pytest.raises(ValueError):
        summarize([])


def test_to_json_has_every_statistic() -> None:
    assert set(summarize([1.0, 2.0]).to_json()) == {"p50", "p90", "p95", "p99", "mean", "std", "min", "max"}
