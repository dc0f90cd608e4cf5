"""Probes and scrapes: finding the deployments due one, and recording what they measured.

Beat calls ``send_due_probes`` every few seconds; each due deployment is claimed (its
``last_probe_at`` moved with a conditional update, so two beats never send one twice) and
``perfmon.probe_deployment`` is sent by name to the queue of the deployment's node and device,
where a worker of concurrency 1 runs it: never beside a job on that device. The task checks again
before measuring and records a skip, with why, when a benchmark or optimization holds the device."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from dashboard.alerting.feed import publish_observations
from dashboard.deployments import store
from dashboard.deployments.series import latency_metric
from dashboard.models import Deployment, Job, JobStatus
from dashboard.models.history import HOST_DEVICE
from dashboard.queues import queue_for
from dashboard.tasknames import PROBE_DEPLOYMENT

log = logging.getLogger(__name__)


def _due(field: str, interval_ok: Q, now: datetime):
    never = Q(**{f"{field}__isnull": True})
    # F() arithmetic on intervals differs per backend; compare in Python for the few candidates.
    return [
        d
        for d in Deployment.objects.filter(interval_ok).filter(never | Q(**{f"{field}__lte": now}))
        if getattr(d, field) is None or getattr(d, field) + timedelta(seconds=d.probe_interval_s) <= now
    ]


def _claim(deployment: Deployment, field: str, now: datetime) -> bool:
    """Move the deployment's last_<x>_at to now unless someone else did meanwhile."""
    previous = getattr(deployment, field)
    return bool(Deployment.objects.filter(pk=deployment.pk, **{field: previous}).update(**{field: now}))


def send_due_probes(now: datetime | None = None) -> list[str]:
    """Send a probe for each deployment whose probe interval has passed; returns their names."""
    now = timezone.now() if now is None else now
    sent = []
    for deployment in _due("last_probe_at", Q(probe_interval_s__gt=0), now):
        if not _claim(deployment, "last_probe_at", now):
            continue
        queue = queue_for(deployment.node_name, deployment.params.get("device", "cpu"))
        transaction.on_commit(lambda pk=deployment.pk, queue=queue: _send_probe(pk, queue))
        sent.append(deployment.name)
    return sent


def _send_probe(deployment_id: int, queue: str) -> None:
    from perfmon.celery import app

    # expires: a probe stuck behind a long job is dropped, not run late; the next one is sent anyway.
    app.send_task(PROBE_DEPLOYMENT, [deployment_id], queue=queue, expires=60)


def due_scrapes(now: datetime | None = None) -> list[Deployment]:
    """Deployments with a scrape config whose interval (probe_interval_s, or 60 s when probes are
    off) has passed, claimed for this scrape."""
    now = timezone.now() if now is None else now
    candidates = Deployment.objects.filter(scrape__isnull=False).filter(
        Q(last_scrape_at__isnull=True) | Q(last_scrape_at__lte=now)
    )
    due = []
    for deployment in candidates:
        interval = timedelta(seconds=deployment.probe_interval_s or 60)
        last = deployment.last_scrape_at
        if (last is None or last + interval <= now) and _claim(deployment, "last_scrape_at", now):
            due.append(deployment)
    return due


def device_holder(deployment: Deployment) -> Job | None:
    """A benchmark or optimization job running on the deployment's node and device, if any."""
    device = deployment.params.get("device", "cpu")
    running = Job.objects.filter(status=JobStatus.RUNNING).filter(
        Q(node_name=deployment.node_name) | Q(node_name="", target_node=deployment.node_name)
    )
    for job in running.only("pk", "kind", "params"):
        devices = {job.params.get("device", "cpu"), *job.params.get("devices", [])}
        if device in devices:
            return job
    return None


def record(deployment: Deployment, ts: float, stats: dict[str, float]) -> int:
    """Write one measurement (stat -> ms) of the deployment into the history now and publish it."""
    import numpy as np

    node = deployment.node_name
    batch = {
        (node, latency_metric(deployment.name, stat), HOST_DEVICE): (np.array([ts]), np.array([float(v)]))
        for stat, v in stats.items()
    }
    if not batch:
        return 0
    written = store.write(batch)
    publish_observations(
        [(node, latency_metric(deployment.name, s), None, ts, float(v)) for s, v in stats.items()]
    )
    return written


def set_probe_state(deployment_id: int, status: str, reason: str = "", **extra: Any) -> None:
    state = {"at": time.time(), "status": status, "reason": reason, **extra}
    Deployment.objects.filter(pk=deployment_id).update(probe_state=state)


def set_scrape_state(deployment_id: int, state: dict[str, Any]) -> None:
    Deployment.objects.filter(pk=deployment_id).update(scrape_state=state)


__all__ = ["device_holder", "due_scrapes", "record", "send_due_probes", "set_probe_state"]
