"""Summary statistics of latency samples, in pure Python (numpy may be absent on a node)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass


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


def _percentile(sorted_ms: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks, numpy's default ``method="linear"``."""
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
        p50=_percentile(xs, 0.50),
        p90=_percentile(xs, 0.90),
        p95=_percentile(xs, 0.95),
        p99=_percentile(xs, 0.99),
        mean=mean,
        std=std,
        min=xs[0],
        max=xs[-1],
    )
