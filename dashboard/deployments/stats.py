"""Reading a deployment's latency back from the history: recent statistics for its page and API,
and the before/during comparison of a promotion's verification window."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from dashboard.deployments.series import STATS, latency_metric
from dashboard.history import query
from dashboard.models import Deployment, MetricSeries, Node
from dashboard.models.history import HOST_DEVICE

# Which series say how fast a deployment is, best first: probe medians, the user's own samples,
# then scrape means.
VERDICT_STATS = ("p50", "sample", "mean")


def values_between(deployment: Deployment, stat: str, start: float, end: float) -> np.ndarray:
    """The raw values (ms) of one latency statistic in [start, end) epoch seconds."""
    row = (
        MetricSeries.objects.filter(
            node__name=deployment.node_name,
            metric=latency_metric(deployment.name, stat),
            gpu_index=HOST_DEVICE,
        )
        .only("pk")
        .first()
    )
    if row is None:
        return np.zeros(0)
    _ts, _count, values, _low, _high = query._raw(row.pk, start, end)
    return np.asarray(values, dtype=np.float64)


def recent(deployment: Deployment, window_s: float = 3600.0, now: float | None = None) -> dict[str, Any]:
    """stat -> {"count", "mean_ms", "p50_ms", "p95_ms", "p99_ms", "last_ms"} over the last
    ``window_s`` seconds, for the statistics that have data there."""
    now = time.time() if now is None else now
    if not Node.objects.filter(name=deployment.node_name).exists():
        return {}
    metrics = {latency_metric(deployment.name, stat): stat for stat in STATS}
    rows = MetricSeries.objects.filter(
        node__name=deployment.node_name, metric__in=list(metrics), gpu_index=HOST_DEVICE
    ).values_list("pk", "metric")
    out: dict[str, Any] = {}
    for pk, metric in rows:
        _ts, _count, values, _low, _high = query._raw(pk, now - window_s, now + 1.0)
        if len(values) == 0:
            continue
        ordered = np.sort(values)
        out[metrics[metric]] = {
            "count": len(values),
            "mean_ms": float(np.mean(values)),
            "p50_ms": float(np.quantile(ordered, 0.50)),
            "p95_ms": float(np.quantile(ordered, 0.95)),
            "p99_ms": float(np.quantile(ordered, 0.99)),
            "last_ms": float(values[-1]),
        }
    return {stat: out[stat] for stat in STATS if stat in out}
