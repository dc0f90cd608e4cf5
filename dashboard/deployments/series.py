"""How a deployment's latency is named in the metric history.

A deployment's latency is stored like any resource metric: a series of the deployment's node, with
a metric name that carries the deployment and the statistic, so the same rollups, charts and
``/api/metrics/series`` serve it, and the alert evaluator sees it as one more observation."""

from __future__ import annotations

import re

PREFIX = "deploy:"

# Statistics a source may record (all in milliseconds):
#   sample   every latency the user's service sent through ingest
#   p50/p95/p99/mean   a probe's harness measurement, or a scrape interval's derived value
#   queue_mean, compute_mean   Triton's queue and compute split of a scrape interval
#   e2e_p50/e2e_p95/e2e_p99    a probe's HTTP round trip to the deployment's endpoint_url
STATS = (
    "sample",
    "p50",
    "p95",
    "p99",
    "mean",
    "queue_mean",
    "compute_mean",
    "e2e_p50",
    "e2e_p95",
    "e2e_p99",
)

_METRIC = re.compile(r"^deploy:(?P<name>[-a-zA-Z0-9_]+):(?P<stat>[a-z0-9_]+)_ms$")


def latency_metric(deployment: str, stat: str) -> str:
    """The history metric name of one latency statistic of one deployment, e.g.
    ``deploy:digits-prod:p95_ms``."""
    if stat not in STATS:
        raise ValueError(f"unknown latency statistic {stat!r}; one of {', '.join(STATS)}")
    return f"{PREFIX}{deployment}:{stat}_ms"


def parse_latency_metric(metric: str) -> tuple[str, str] | None:
    """(deployment, stat) for a deployment latency metric name, else None."""
    match = _METRIC.match(metric)
    return (match["name"], match["stat"]) if match else None
