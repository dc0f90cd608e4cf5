"""Regression flags: each new benchmark result against the previous comparable one.

Comparable means the same model, node, device, precision and batch size (the issue's rule). The
baseline of a batch size is the most recent earlier succeeded job that measured it without error,
so a sweep of [1, 8, 32] after a run of [32] alone still compares batch 32."""

from __future__ import annotations

import math
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import Q

from dashboard.models import Job, JobKind, JobStatus, Regression
from dashboard.results.runs import Run, device_of, precision_of, runs_of

DEFAULT_THRESHOLD = 0.10
# Older results than this many comparable jobs back are not worth loading (each carries raw times).
MAX_LOOKBACK_JOBS = 200


def regression_threshold() -> float:
    """settings.PERFMON_REGRESSION_THRESHOLD: p50 worse by more than this fraction (0.10 = +10%) is flagged."""
    threshold = getattr(settings, "PERFMON_REGRESSION_THRESHOLD", DEFAULT_THRESHOLD)
    if not isinstance(threshold, int | float) or not math.isfinite(threshold) or threshold < 0:
        raise ImproperlyConfigured(
            f"PERFMON_REGRESSION_THRESHOLD={threshold!r}: expected a fraction >= 0, such as 0.10"
        )
    return float(threshold)


def _finished_moment(job: Job) -> datetime:
    return job.finished_at or job.created_at


def _earlier_comparable_jobs(job: Job):
    """Succeeded benchmarks of the same model on the same node that finished before ``job``, newest first."""
    moment = _finished_moment(job)
    return (
        Job.objects.filter(
            kind=JobKind.BENCHMARK,
            status=JobStatus.SUCCEEDED,
            model_name=job.model_name,
            node_name=job.node_name,
        )
        .exclude(pk=job.pk)
        .filter(Q(finished_at__lt=moment) | Q(finished_at=moment, pk__lt=job.pk))
        .order_by("-finished_at", "-pk")
    )


def find_baselines(job: Job, batch_sizes: set[int]) -> dict[int, tuple[Job, Run]]:
    """For each batch size, the most recent earlier comparable job and its run there (absent: none)."""
    device = device_of(job.params, job.result)
    precision = precision_of(job.params, job.result)
    wanted = set(batch_sizes)
    found: dict[int, tuple[Job, Run]] = {}
    # Ids and params first, then one result at a time: a result carries every raw time and decoding
    # it is what costs, so jobs that never asked for a wanted batch size are skipped unread.
    candidates = _earlier_comparable_jobs(job).values_list("pk", "params")[:MAX_LOOKBACK_JOBS]
    for candidate_id, params in candidates:
        if not wanted:
            break
        asked = params.get("batch_sizes") if isinstance(params, dict) else None
        if isinstance(asked, list) and not wanted.intersection(asked):
            continue
        candidate = Job.objects.filter(pk=candidate_id).first()
        if candidate is None:  # deleted meanwhile
            continue
        if device_of(candidate.params, candidate.result) != device:
            continue
        if precision_of(candidate.params, candidate.result) != precision:
            continue
        for run in runs_of(candidate.result):
            if run.ok and run.batch_size in wanted:
                found[run.batch_size] = (candidate, run)
                wanted.discard(run.batch_size)
    return found


def record_regressions(job: Job) -> list[Regression]:
    """Compare a succeeded benchmark with its baselines and store a Regression per batch size whose
    p50 is worse by more than regression_threshold(); returns them ordered by batch size.

    Idempotent: calling it again replaces the job's earlier flags. A job that did not succeed, or
    has no earlier comparable result, gets none."""
    if job.kind != JobKind.BENCHMARK or job.status != JobStatus.SUCCEEDED:
        return []
    threshold = regression_threshold()
    runs = {run.batch_size: run for run in runs_of(job.result) if run.ok}
    baselines = find_baselines(job, set(runs))
    flagged = []
    for batch_size, (baseline_job, baseline_run) in sorted(baselines.items()):
        p50_ms = runs[batch_size].p50_ms
        baseline_p50_ms = baseline_run.p50_ms
        if p50_ms is None or baseline_p50_ms is None or baseline_p50_ms <= 0:
            continue
        ratio = p50_ms / baseline_p50_ms
        if ratio > 1.0 + threshold:
            flagged.append(
                Regression(
                    job=job,
                    baseline_job=baseline_job,
                    batch_size=batch_size,
                    baseline_p50_ms=baseline_p50_ms,
                    p50_ms=p50_ms,
                    ratio=ratio,
                    threshold=threshold,
                )
            )
    with transaction.atomic():
        Regression.objects.filter(job=job).delete()
        Regression.objects.bulk_create(flagged)
    return flagged
