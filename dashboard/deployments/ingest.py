"""Latency samples from the user's own service: POST /api/ingest/latency.

A request is all or nothing: every sample is checked before any is stored, and the first bad one
is named (index and reason). The samples are written to the history synchronously (the 202 means
they are stored), as the deployment's "sample" series, then published to the alert evaluator."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np

from dashboard.alerting.feed import publish_observations
from dashboard.deployments import store
from dashboard.deployments.actions import DeploymentRefused
from dashboard.deployments.series import latency_metric
from dashboard.models import Deployment
from dashboard.models.history import HOST_DEVICE
from dashboard.permissions import PermissionDenied, Role, has_role, role_of

MAX_SAMPLES = 10_000
MAX_AGE_S = 86_400.0
# A sender's clock a little ahead of ours is not "the future": this much is tolerated.
FUTURE_SKEW_S = 5.0
# Each service sends every second or so: its deployment's node is looked up once per this long.
LOOKUP_TTL_S = 5.0
_nodes: dict[str, tuple[float, Deployment]] = {}


class IngestRefused(ValueError):
    """A request refused as a whole; the message names the first bad sample or field."""


def _timestamp(raw: object) -> float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        return float(raw)
    if isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            return None
        if parsed.tzinfo is None:  # ISO 8601 without an offset: taken as UTC
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    return None


def parse_samples(samples: Any, now: float) -> tuple[np.ndarray, np.ndarray]:
    """(epoch seconds, latency ms) of the samples, or IngestRefused naming the first bad one."""
    if not isinstance(samples, list) or not samples:
        raise IngestRefused("samples: a non-empty list of {ts, latency_ms}")
    if len(samples) > MAX_SAMPLES:
        raise IngestRefused(f"samples: at most {MAX_SAMPLES} a request, not {len(samples)}")
    ts = np.empty(len(samples))
    values = np.empty(len(samples))
    oldest, newest = now - MAX_AGE_S, now + FUTURE_SKEW_S
    for i, sample in enumerate(samples):
        if isinstance(sample, dict):
            t, v = sample.get("ts"), sample.get("latency_ms")
        else:  # a schema object from the API layer
            t, v = getattr(sample, "ts", None), getattr(sample, "latency_ms", None)
        when = _timestamp(t)
        if when is None:
            raise IngestRefused(f"samples[{i}]: ts {t!r} is neither epoch seconds nor ISO 8601")
        if not math.isfinite(when):
            raise IngestRefused(f"samples[{i}]: ts {t!r} is not a finite number")
        if when < oldest:
            raise IngestRefused(f"samples[{i}]: ts {t!r} is more than a day old")
        if when > newest:
            raise IngestRefused(f"samples[{i}]: ts {t!r} is in the future")
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise IngestRefused(f"samples[{i}]: latency_ms {v!r} is not a number")
        if math.isnan(v):
            raise IngestRefused(f"samples[{i}]: latency_ms is NaN")
        if math.isinf(v):
            raise IngestRefused(f"samples[{i}]: latency_ms is infinite")
        if v < 0:
            raise IngestRefused(f"samples[{i}]: latency_ms {v!r} is negative")
        ts[i] = when
        values[i] = v
    return ts, values


def _lookup(name: str) -> Deployment | None:
    """The deployment (name and node only), from a few seconds' cache: one query less a request."""
    now = time.monotonic()
    cached = _nodes.get(name)
    if cached is not None and cached[0] > now:
        return cached[1]
    deployment = Deployment.objects.filter(name=name).only("name", "node_name").first()
    if deployment is not None:
        if len(_nodes) > 10_000:
            _nodes.clear()
        _nodes[name] = (now + LOOKUP_TTL_S, deployment)
    return deployment


def forget_lookups() -> None:
    _nodes.clear()


def may_ingest(user, token, deployment: Deployment) -> bool:
    """Operators may send for any deployment; an agent's token for the deployments of its node."""
    if has_role(user, Role.OPERATOR):
        return True
    return bool(token is not None and token.agent_node and token.agent_node == deployment.node_name)


def do_ingest_latency(user, token, deployment_name: object, samples: Any, now: float | None = None) -> int:
    """Store a request's samples as the deployment's "sample" series; returns how many."""
    if not isinstance(deployment_name, str) or not deployment_name or len(deployment_name) > 100:
        raise IngestRefused("deployment: the name of a deployment")
    try:
        deployment_name.encode("utf-8")
    except UnicodeEncodeError:
        raise IngestRefused("deployment: not valid Unicode text (it holds a lone surrogate)") from None
    deployment = _lookup(deployment_name)
    if deployment is None:
        raise IngestRefused(f"deployment: unknown deployment {deployment_name!r}")
    if not may_ingest(user, token, deployment):
        raise PermissionDenied(
            f"sending latency for {deployment.name} needs the operator role or the agent token of"
            f" node {deployment.node_name}; you act as {role_of(user).value}"
        )
    ts, values = parse_samples(samples, time.time() if now is None else now)
    metric = latency_metric(deployment.name, "sample")
    stored = store.write({(deployment.node_name, metric, HOST_DEVICE): (ts, values)})
    publish_observations(
        [
            (deployment.node_name, metric, None, t, v)
            for t, v in zip(ts.tolist(), values.tolist(), strict=True)
        ]
    )
    return stored


__all__ = ["MAX_SAMPLES", "DeploymentRefused", "IngestRefused", "do_ingest_latency", "parse_samples"]
