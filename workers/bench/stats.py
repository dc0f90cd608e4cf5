"""Summary statistics of latency samples, in pure Python (numpy may be absent on a node).

Percentiles interpolate linearly between closest ranks (numpy's default). The confidence
interval of the median is distribution-free: it comes from order statistics and the binomial
distribution, so it holds for the skewed, multi-modal latencies benchmarks produce.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

# A run is "unstable" when the 95% CI of its median is wider than +/-5% of the median. The harness
# aims for +/-2% and stops there when it can; 5% is what a verdict needs: two runs whose CIs are
# each +/-5% can only be told apart (CIs that do not overlap) when their medians differ by about 10%,
# the default regression threshold, so a wider CI cannot support a verdict at that threshold.
# (IQR / median, torch.utils.benchmark's test, says how spread single calls are, not how well the
# median is known: with thousands of samples of a 30 us model it is over 10% on a quiet machine.)
UNSTABLE_CI_REL_HALF_WIDTH = 0.05
# Up to this many samples the exact binomial sum is cheap and 0.5**n does not underflow; above it the
# normal approximation is accurate to within a rank.
_EXACT_CI_MAX_N = 1000


@dataclass(frozen=True)
class LatencyStats:
    """Latency summary; every field is in milliseconds. ``std`` is the sample (n-1) deviation."""

    p50: float
    p90: float
    p95: float
    p99: float
    mean: float
    std: float
    min: float
    max: float

    def to_json(self) -> dict[str, float]:
        return asdict(self)


def percentile(sorted_ms: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of an ascending, non-empty sequence, numpy's ``method="linear"``."""
    pos = (len(sorted_ms) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_ms) - 1)
    return sorted_ms[lo] + (pos - lo) * (sorted_ms[hi] - sorted_ms[lo])


def summarize(times_ms: Sequence[float]) -> LatencyStats:
    """Summarize per-iteration latencies (ms). Raises ``ValueError`` on an empty sequence."""
    if not times_ms:
        raise ValueError("cannot summarize an empty list of times")
    xs = sorted(float(t) for t in times_ms)
    n = len(xs)
    mean = math.fsum(xs) / n
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1)) if n > 1 else 0.0
    return LatencyStats(
        p50=percentile(xs, 0.50),
        p90=percentile(xs, 0.90),
        p95=percentile(xs, 0.95),
        p99=percentile(xs, 0.99),
        mean=mean,
        std=std,
        min=xs[0],
        max=xs[-1],
    )


def iqr(times_ms: Sequence[float]) -> float:
    """Interquartile range p75 - p25 (ms) of a non-empty sequence."""
    xs = sorted(times_ms)
    return percentile(xs, 0.75) - percentile(xs, 0.25)


def ci_rel_half_width(median_ms: float, low_ms: float, high_ms: float) -> float:
    """The larger side of a CI of the median as a fraction of the median (0.02 = +/-2%); inf at median 0."""
    if median_ms <= 0:
        return math.inf
    return max(median_ms - low_ms, high_ms - median_ms) / median_ms


def is_unstable_ci(median_ms: float, ci_ms: tuple[float, float] | None) -> bool:
    """True when the median is not known to +/-UNSTABLE_CI_REL_HALF_WIDTH at 95% (or has no CI at all)."""
    if ci_ms is None:
        return True
    return ci_rel_half_width(median_ms, *ci_ms) > UNSTABLE_CI_REL_HALF_WIDTH


def is_unstable(times_ms: Sequence[float]) -> bool:
    """True when the 95% CI of the median is wider than +/-5% of it, or below 6 samples (no CI)."""
    xs = sorted(times_ms)
    if not xs:
        return True
    return is_unstable_ci(percentile(xs, 0.5), median_ci(xs))


def median_ci_ranks(n: int, confidence: float = 0.95) -> tuple[int, int] | None:
    """1-based ranks (l, u) with P(x_(l) <= true median <= x_(u)) >= ``confidence``; ``None`` if n is too small.

    l is the largest rank with P(B <= l - 1) <= alpha/2 for B ~ Binomial(n, 1/2), and u = n + 1 - l,
    the textbook order-statistic interval (e.g. n = 100 gives ranks 40 and 61). With n <= 5 no pair
    of ranks reaches 95%.
    """
    alpha_half = (1.0 - confidence) / 2.0
    if n < 1 or 0.5**n > alpha_half:
        return None
    if n <= _EXACT_CI_MAX_N:
        lower = 0  # the number of ranks below the interval, i.e. l - 1
        cdf = 0.0
        term = 0.5**n  # P(B = 0); P(B = i + 1) = P(B = i) * (n - i) / (i + 1)
        while True:
            if cdf + term > alpha_half:
                break
            cdf += term
            term *= (n - lower) / (lower + 1)
            lower += 1
        low_rank = lower
        if low_rank < 1:
            return None
    else:
        z = _normal_quantile(1.0 - alpha_half)
        low_rank = max(1, math.floor(n / 2.0 - z * math.sqrt(n) / 2.0))
    return low_rank, n + 1 - low_rank


def _normal_quantile(p: float) -> float:
    """Inverse standard normal CDF by bisection on math.erf (only used for large samples)."""
    lo, hi = -10.0, 10.0
    for _ in range(100):
        mid = (lo + hi) / 2.0
        if 0.5 * (1.0 + math.erf(mid / math.sqrt(2.0))) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


def median_ci(times_ms: Sequence[float], confidence: float = 0.95) -> tuple[float, float] | None:
    """Distribution-free ``confidence`` interval (ms) of the median, or ``None`` below 6 samples."""
    xs = sorted(times_ms)
    ranks = median_ci_ranks(len(xs), confidence)
    if ranks is None:
        return None
    return xs[ranks[0] - 1], xs[ranks[1] - 1]


def median_ci_converged(sorted_ms: Sequence[float], rel_half_width: float, confidence: float = 0.95) -> bool:
    """True when the CI of the median of an ascending sample lies within median * (1 +/- ``rel_half_width``)."""
    ranks = median_ci_ranks(len(sorted_ms), confidence)
    if ranks is None:
        return False
    median = percentile(sorted_ms, 0.5)
    low, high = sorted_ms[ranks[0] - 1], sorted_ms[ranks[1] - 1]
    return low >= median * (1.0 - rel_half_width) and high <= median * (1.0 + rel_half_width)
