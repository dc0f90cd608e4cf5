from __future__ import annotations

import math
import random

import pytest

from workers.bench.stats import (
    iqr,
    is_unstable,
    median_ci,
    median_ci_converged,
    median_ci_ranks,
    summarize,
)


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


def test_iqr_is_reported_and_unstable_means_a_loose_median_ci() -> None:
    # numpy.percentile(range(1, 101), [25, 75]) = 25.75, 75.25
    assert iqr([float(i) for i in range(1, 101)]) == pytest.approx(49.5)
    # n = 100: CI ranks 40 and 61, i.e. 40 .. 61 around 50.5: +/-21%, far over 5%.
    assert is_unstable([float(i) for i in range(1, 101)])
    # Spread single calls (IQR 30% of the median) but 1000 samples pin the median to about +/-2%:
    # the old IQR rule called this unstable; the median is known well enough for a verdict.
    spread = [7.0 + 6.0 * i / 999 for i in range(1000)]
    assert iqr(spread) / 10.0 == pytest.approx(0.3, abs=0.01)
    assert not is_unstable(spread)
    # Too few samples for any 95% CI of the median: nothing can be concluded from it.
    assert is_unstable([10.0] * 5)
    assert not is_unstable([10.0] * 6)


def test_median_ci_ranks_match_the_binomial_tables() -> None:
    # Textbook order-statistic intervals for the median at 95%: n = 6 (1, 6), 10 (2, 9), 20 (6, 15),
    # 100 (40, 61); below 6 samples no pair of ranks reaches 95%.
    assert median_ci_ranks(5) is None
    assert median_ci_ranks(6) == (1, 6)
    assert median_ci_ranks(10) == (2, 9)
    assert median_ci_ranks(20) == (6, 15)
    assert median_ci_ranks(100) == (40, 61)
    # The large-sample branch agrees with the exact one where they meet.
    assert median_ci_ranks(1001) == (469, 533)
    assert median_ci_ranks(100_000) == (49690, 50311)


def test_median_ci_on_a_known_sample() -> None:
    sample = [float(i) for i in range(100, 0, -1)]  # 1..100 in reverse: order must not matter
    assert median_ci(sample) == (40.0, 61.0)
    assert median_ci([1.0, 2.0, 3.0, 4.0, 5.0]) is None


def test_median_ci_covers_the_true_median_95_percent_of_the_time() -> None:
    # Exponential latencies are skewed, as real ones are; the interval is distribution-free.
    rng = random.Random(42)
    true_median = math.log(2.0)
    trials = 2000
    covered = 0
    for _ in range(trials):
        low, high = median_ci([rng.expovariate(1.0) for _ in range(30)])  # type: ignore[misc]
        covered += low <= true_median <= high
    # Exact coverage at n = 30 is 1 - 2 * P(B <= 9) = 0.957; 2000 trials put 3 sigma at +/-0.014.
    assert 0.94 <= covered / trials <= 0.975


def test_convergence_is_judged_against_two_percent_of_the_median() -> None:
    # Ranks 40 and 61 of 100 values: 9.9 and 10.1 around a median of 10.0 is +/-1%: converged.
    narrow = sorted([9.0] * 39 + [9.9] + [10.0] * 20 + [10.1] + [11.0] * 39)
    assert median_ci_converged(narrow, 0.02)
    wide = sorted([9.0] * 39 + [9.7] + [10.0] * 20 + [10.3] + [11.0] * 39)
    assert not median_ci_converged(wide, 0.02)
    assert not median_ci_converged([10.0] * 5, 0.02)  # too few samples for any 95% interval
