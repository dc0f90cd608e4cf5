"""Celery tasks: thin translations between the database and the engine (no measuring here)."""

from __future__ import annotations

import logging
import os
import time
import uuid
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections
from django.db.models import Value
from django.db.models.functions import Concat
from django.utils import timezone

from dashboard import kinds, live
from dashboard.actions import do_finish_cancelled_job, do_finish_job
from dashboard.kinds import JobContext
from dashboard.models import Job, JobStatus
from dashboard.tasknames import RUN_JOB
from workers import zoo

log = logging.getLogger(__name__)

# The database going away (a restart, a failover) raises these; a job's measurement goes on meanwhile.
DATABASE_AWAY = (OperationalError, InterfaceError)
# How long a finished job keeps trying to record its outcome while the database is away.
FINISH_RETRY_S = 600.0
FINISH_RETRY_EVERY_S = 2.0


@shared_task(name=RUN_JOB, bind=True, acks_late=True, max_retries=0)
def run_job(self, job_id: int) -> str:
    """Claim the job, run its kind's run function through a context, record the outcome."""
    return _run_job(job_id, self.request.hostname or "")


@shared_task(name="perfmon.run_benchmark", bind=True, acks_late=True, max_retries=0)
def run_benchmark(self, job_id: int) -> str:
    """The task name before job kinds: messages queued by an older version still run."""
    return _run_job(job_id, self.request.hostname or "")


def _run_job(job_id: int, worker_hostname: str) -> str:
    claimed = Job.objects.filter(id=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING,
        started_at=timezone.now(),
        node_name=settings.NODE_NAME,
        worker_hostname=worker_hostname,
        worker_pid=os.getpid(),
        step="starting",
    )
    if not claimed:  # cancelled while queued, or a redelivery of a job another worker has
        return "skipped"
    job = Job.objects.get(id=job_id)
    live.push_job(job)
    context = JobContext(
        job=job,
        progress=_progress_reporter(job_id),
        should_stop=_cancel_checker(job_id),
        load_model=_load_model,
        data_dir=settings.DATA_DIR,
    )
    try:
        outcome = kinds.get(job.kind).run(context)
    except Exception as exc:
        log.exception("job %s failed", job_id)
        _record_end(job_id, do_finish_job, job_id, JobStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
        return "failed"
    if outcome.status == JobStatus.CANCELLED:
        _record_end(job_id, do_finish_cancelled_job, job_id, outcome.result)
    else:
        _record_end(job_id, do_finish_job, job_id, outcome.status, result=outcome.result, error=outcome.error)
    return str(outcome.status)


def _record_end(job_id: int, finish, *args, **kwargs) -> None:
    """Record a job's outcome, waiting out a database that is away (restarting) for up to
    FINISH_RETRY_S: a measurement that took minutes must not be lost to a write that failed once."""
    deadline = time.monotonic() + FINISH_RETRY_S
    while True:
        try:
            finish(*args, **kwargs)
            return
        except DATABASE_AWAY as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("job %s: could not record its outcome (%s); trying again", job_id, exc)
            _drop_broken_connection()
            time.sleep(FINISH_RETRY_EVERY_S)


def _drop_broken_connection() -> None:
    """A connection the server dropped stays broken until closed; the next query opens a new one."""
    try:
        close_old_connections()
    except Exception:  # closing a dead connection can itself fail: it is gone either way
        log.debug("closing a broken database connection failed", exc_info=True)


def _load_model(name: str):
    """(model, input spec) of a zoo name or a registered "name@version"."""
    from workers.zoo import InputSpec

    if name in zoo.ZOO:
        entry = zoo.get(name)
        # Trained weights (cached in the data dir) for the MLPs, so results and accuracy agree.
        return entry.build(settings.DATA_DIR / "zoo"), entry.input_spec
    from dashboard.models import ModelVersion
    from dashboard.registry_actions import model_store
    from workers.registry import load_model

    model_name, _, number = name.rpartition("@")
    version = ModelVersion.objects.filter(model__name=model_name, version=int(number)).first()
    if version is None:
        raise zoo.UnknownModel(name)
    path = model_store().path_for(version.sha256)
    if not path.is_file():
        raise FileNotFoundError(f"{name}: the stored file is missing on node {settings.NODE_NAME}")
    return load_model(path, version.format, version.architecture), InputSpec.from_json(version.input_spec)


def _progress_reporter(job_id: int):
    """Progress to the row and the page; each new step also becomes a line of the job's log."""
    last_step = ""

    def report(fraction: float, step: str) -> None:
        nonlocal last_step
        changes: dict = {"progress_percent": fraction * 100, "step": step}
        message = {"type": "progress", "job_id": job_id, "progress": round(fraction * 100, 1), "step": step}
        if step != last_step:
            last_step = step
            line = f"{timezone.now():%H:%M:%S} {step}\n"
            changes["log"] = Concat("log", Value(line))
            message["log_line"] = line
        try:
            Job.objects.filter(id=job_id, status=JobStatus.RUNNING).update(**changes)
        except DATABASE_AWAY as exc:  # best effort: the measurement goes on, the next step writes again
            log.warning("job %s: could not record progress (%s)", job_id, exc)
            _drop_broken_connection()
            if "log" in changes:
                last_step = ""  # write this step's log line with the next report
        live.push(f"job:{job_id}", message)  # best effort: a Redis hiccup must not fail the measurement

    return report


def _cancel_checker(job_id: int, every_s: float = 1.0):
    last = {"checked": 0.0, "stop": False}

    def should_stop() -> bool:
        now = time.monotonic()
        if now - last["checked"] >= every_s:
            last["checked"] = now
            try:
                last["stop"] = not Job.objects.filter(id=job_id, status=JobStatus.RUNNING).exists()
            except DATABASE_AWAY as exc:  # cannot tell: keep measuring, ask again next time
                log.warning("job %s: could not check for a cancel (%s)", job_id, exc)
                _drop_broken_connection()
        return last["stop"]

    return should_stop


@shared_task(name="perfmon.fail_orphaned_jobs", queue="maintenance")
def fail_orphaned_jobs() -> int:
    """Fail running jobs whose worker died, so that no job stays "running" forever.

    A worker counts as gone when it has not written its liveness lately (dashboard.workers_seen), or
    when the worker of that name now alive started after the job did: the supervisor restarted it
    under the same name, and the new process cannot be measuring a job the old one claimed."""
    from dashboard.workers_seen import alive_workers
    from perfmon.celery import app

    running = list(
        Job.objects.filter(
            status=JobStatus.RUNNING,
            started_at__lt=timezone.now() - timedelta(seconds=settings.ORPHAN_GRACE_S),
        )
    )
    if not running:
        return 0
    alive = alive_workers()  # Redis away: raise, and the next sweep looks again
    unseen = {job.worker_hostname for job in running} - set(alive)
    if unseen:
        # Just after a Redis outage every liveness key has expired and workers write theirs again
        # within a few seconds: a worker that still answers a ping is not lost.
        alive.update({name: {} for reply in app.control.ping(timeout=1.0) or [] for name in reply})
    failed = 0
    for job in running:
        worker = alive.get(job.worker_hostname)
        restarted = worker is not None and worker.get("since", 0) > job.started_at.timestamp()
        task_state = app.AsyncResult(job.celery_task_id).state if job.celery_task_id else "UNKNOWN"
        if worker is None or restarted or task_state in {"FAILURE", "REVOKED"}:
            do_finish_job(job.pk, JobStatus.FAILED, error="worker lost: the worker running this job stopped")
            failed += 1
    return failed


@shared_task(name="perfmon.resend_lost_queued_jobs", queue="maintenance")
def resend_lost_queued_jobs() -> int:
    """Send again every job queued for a while whose broker message is nowhere: not in its queue, not
    delivered-but-unacknowledged. That happens when Redis lost its data (a restart without the
    append-only file) or was away when the job was submitted. A duplicate is harmless: run_job
    claims a job only while it is queued. Returns the number of jobs sent again."""
    from dashboard.actions import send_job_task
    from dashboard.queues import ANY_NODE_QUEUE

    queued = list(
        Job.objects.filter(
            status=JobStatus.QUEUED,
            created_at__lt=timezone.now() - timedelta(seconds=settings.QUEUED_RESEND_AFTER_S),
        )
    )
    if not queued:
        return 0
    present = _task_ids_in_broker({job.queue or ANY_NODE_QUEUE for job in queued})
    resent = 0
    for job in queued:
        if job.celery_task_id and job.celery_task_id in present:
            continue
        # The row names the new task before it is sent: a worker may claim the job at once, and the
        # orphan sweep must then judge the new task, not the failed one it replaces.
        task_id = str(uuid.uuid4())
        if not Job.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(celery_task_id=task_id):
            continue  # claimed or cancelled meanwhile
        send_job_task(job.pk, job.queue or ANY_NODE_QUEUE, task_id)  # Redis away again: the next sweep
        Job.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(step="")  # no longer waiting
        log.warning("job %s was queued but its message was gone; sent it again", job.pk)
        resent += 1
    return resent


# kombu's Redis transport keeps a queue in one list per priority step, named queue + "\x06\x16" +
# step (step 0 is the bare name), and delivered, unacknowledged messages in the "unacked" hash.
_PRIORITY_SEPARATOR = "\x06\x16"
_PRIORITY_STEPS = (0, 3, 6, 9)


def _task_ids_in_broker(queues: set[str]) -> set[str]:
    import json

    import redis

    client = redis.Redis.from_url(
        settings.REDIS_URL,
        socket_timeout=settings.REDIS_SOCKET_TIMEOUT_S,
        socket_connect_timeout=settings.REDIS_CONNECT_TIMEOUT_S,
    )
    messages: list[bytes] = []
    try:
        for queue in queues:
            for step in _PRIORITY_STEPS:
                key = queue if step == 0 else f"{queue}{_PRIORITY_SEPARATOR}{step}"
                messages.extend(client.lrange(key, 0, -1))
        unacked = [json.loads(raw)[0] for raw in client.hvals("unacked")]
    finally:
        client.close()
    ids = set()
    for message in [json.loads(raw) for raw in messages] + unacked:
        task_id = (message.get("headers") or {}).get("id")
        if task_id:
            ids.add(task_id)
    return ids
