"""Nodes that report samples, jobs run on them, and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone


class Node(models.Model):
    """A machine running the sampler (and usually a worker); registered under its hostname."""

    name = models.CharField(max_length=200, unique=True)
    info = models.JSONField(default=dict, help_text="describe_node(): CPU, GPUs, driver, CUDA, torch")
    gpu_status = models.CharField(max_length=200, default="", help_text='"ok", or why there is no GPU')
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def last_seen_age_s(self) -> float:
        return (timezone.now() - self.last_seen).total_seconds()

    @property
    def is_online(self) -> bool:
        return self.last_seen_age_s <= settings.SAMPLER_STALE_AFTER_S


class JobKind(models.TextChoices):
    BENCHMARK = "benchmark", "Benchmark"


class JobStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})


class Job(models.Model):
    kind = models.CharField(max_length=32, choices=JobKind.choices)
    model_name = models.CharField(max_length=200)
    params = models.JSONField(default=dict)
    status = models.CharField(
        max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True
    )
    progress_percent = models.FloatField(default=0.0)
    step = models.CharField(max_length=200, default="", blank=True, help_text="what the worker is doing now")
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(default="", blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    node_name = models.CharField(max_length=200, default="", blank=True, help_text="node that ran it")
    worker_hostname = models.CharField(max_length=255, default="", blank=True, help_text="Celery worker")
    celery_task_id = models.CharField(max_length=64, default="", blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} {self.model_name} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def to_json(self) -> dict:
        """The job as GET /api/jobs/<id> and the WebSocket show it."""
        return {
            "id": self.pk,
            "kind": self.kind,
            "model": self.model_name,
            "params": self.params,
            "status": self.status,
            "progress": round(self.progress_percent, 1),
            "step": self.step,
            "result": self.result,
            "error": self.error or None,
            "node": self.node_name or None,
            "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
        }


def _iso(moment) -> str | None:
    return moment.isoformat() if moment else None


TOKEN_PREFIX = "pm_"


def hash_token(raw: str) -> str:
    # A random 256-bit token needs no slow hash: SHA-256 of it cannot be brute-forced.
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiToken(models.Model):
    """A bearer token for the REST API. Only its SHA-256 is stored; the token is shown once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    token_hash = models.CharField(max_length=64, unique=True)
    hint = models.CharField(max_length=16, help_text="first characters, to tell tokens apart")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.hint}… ({self.user})"

    @classmethod
    def issue(cls, user) -> tuple[ApiToken, str]:
        raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(user=user, token_hash=hash_token(raw), hint=raw[:10])
        return token, raw

    @classmethod
    def authenticate(cls, raw: str):
        """The active user the token belongs to, or None."""
        token = cls.objects.select_related("user").filter(token_hash=hash_token(raw)).first()
        if token is None or not token.user.is_active:
            return None
        # Recording every use would write on every request; once a minute is enough to audit.
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
            cls.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user
