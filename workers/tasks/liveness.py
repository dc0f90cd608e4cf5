"""Worker-side liveness and shutdown: each worker's main process says it is alive every few seconds
(dashboard.workers_seen), and a worker asked to stop ends the jobs it is running as
"interrupted by shutdown" instead of leaving them "running"."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time

from celery.signals import worker_ready, worker_shutting_down
from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from dashboard import workers_seen

log = logging.getLogger(__name__)

# One stop flag per worker name (tests run several workers in one process).
_stops: dict[str, threading.Event] = {}


@worker_ready.connect
def _on_worker_ready(sender, **_kwargs) -> None:
    # Sent after the pool has forked, so the thread lives in the main process only.
    start_beating(sender.hostname)


def start_beating(hostname: str) -> threading.Event:
    """Write `hostname`'s liveness every WORKER_BEAT_S from a daemon thread until the event is set."""
    stop = _stops[hostname] = threading.Event()
    since = time.time()
    threading.Thread(target=_beat, args=(hostname, since, stop), name="perfmon-liveness", daemon=True).start()
    return stop


def _beat(hostname: str, since: float, stop: threading.Event) -> None:
    failing = False
    while not stop.is_set():
        try:
            workers_seen.record_alive(hostname, os.getpid(), since)
            if failing:
                log.info("worker liveness reaches Redis again")
            failing = False
        except Exception as exc:  # Redis away: health shows the worker as unseen until it is back
            if not failing:
                log.warning("could not record worker liveness: %s", exc)
            failing = True
        stop.wait(settings.WORKER_BEAT_S)


@worker_shutting_down.connect
def interrupt_running_jobs(sender, **_kwargs) -> None:
    """Runs in the main process's signal handler: the work goes to a thread (own DB connection)."""
    if str(sender) in _stops:
        _stops[str(sender)].set()
    threading.Thread(target=_interrupt, args=(str(sender),), name="perfmon-shutdown").start()


def _interrupt(hostname: str) -> None:
    from dashboard import live
    from dashboard.models import Job, JobStatus

    try:
        close_old_connections()
        ids = list(
            Job.objects.filter(status=JobStatus.RUNNING, worker_hostname=hostname).values_list(
                "pk", flat=True
            )
        )
        # The benchmark sees the status change at its next cancel check (about a second) and stops,
        # so the warm shutdown finishes instead of waiting for the whole measurement.
        Job.objects.filter(pk__in=ids, status=JobStatus.RUNNING).update(
            status=JobStatus.FAILED, error="interrupted by shutdown", finished_at=timezone.now(), step=""
        )
        for job in Job.objects.filter(pk__in=ids):
            live.push_job(job)
        with contextlib.suppress(Exception):  # Redis away: the key expires by itself
            workers_seen.forget(hostname)
    except Exception:
        log.exception("could not mark the jobs of %s as interrupted by shutdown", hostname)
    finally:
        connection.close()
