"""Verdicts: each batch size of a new benchmark against the previous like-for-like result.

Like for like means the same comparison key (model@version, node, device, precision, resolved
thread count, runtime, torch version and device name) and the same batch size; the baseline of a
batch size is the most recent earlier succeeded job with that key that measured it without error,
so a sweep of [1, 8, 32] after a run of [32] alone still compares batch 32.

The rule, per batch size, with r = p50 / baseline p50 and t = regression_threshold():
- r within 1 +/- t: "no change";
- else, either run unstable (its median's 95% CI wider than +/-5%, or none): "inconclusive";
- else, the two medians' 95% CIs overlap: "inconclusive" (the difference is not statistically clear);
- else "regression" (slower) or "improvement" (faster).

Baselines follow lineage: a batch size of a registered version that has no earlier result of its own
(an optimized version, just produced) is compared with its parent version's latest comparable result
(and, for a zoo original, the zoo model's), so the first benchmark of an optimized model says at once
whether it is faster than what it was made from. Model and runtime may differ there (an ONNX artifact
runs on ONNX Runtime whatever was asked); everything else must match. Such a verdict's basis carries
``"via": "parent"`` and ``"baseline_model"`` ("name@N"), and the banner names the parent."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import Q

from dashboard.models import Job, JobKind, JobStatus, Regression, Verdict
from dashboard.models.registry import ZOO_ORIGINAL
from dashboard.results.runs import Run, device_of, env_value, precision_of, runs_of, runtime_of, threads_of
from workers.bench.stats import UNSTABLE_CI_REL_HALF_WIDTH

DEFAULT_THRESHOLD = 0.10
# Older results than this many jobs of the same model and node back are not worth loading (each
# carries raw times).
MAX_LOOKBACK_JOBS = 200
# What may differ between a version's result and its parent's: the model, and how it ran (the
# artifact's format picks the runtime).
PARENT_MAY_DIFFER = ("model", "runtime")


def regression_threshold() -> float:
    """settings.PERFMON_REGRESSION_THRESHOLD: p50 worse by more than this fraction (0.10 = +10%),
    with non-overlapping CIs, is a regression."""
    threshold = getattr(settings, "PERFMON_REGRESSION_THRESHOLD", DEFAULT_THRESHOLD)
    if not isinstance(threshold, int | float) or not math.isfinite(threshold) or threshold < 0:
        raise ImproperlyConfigured(
            f"PERFMON_REGRESSION_THRESHOLD={threshold!r}: expected a fraction >= 0, such as 0.10"
        )
    return float(threshold)


def comparison_key(job: Job) -> dict[str, Any]:
    """What must match for two results to be compared (batch size apart). Threads are the count the
    harness resolved, so a job that named none compares with one that named os.cpu_count()."""
    return {
        "model": job.model_name,  # "name@N" for a registered model: the version is part of it
        "node": job.node_name,
        "device": device_of(job.params, job.result),
        "precision": precision_of(job.params, job.result),
        "threads": threads_of(job.params, job.result),
        "runtime": runtime_of(job.params, job.result),
        "torch_version": env_value(job.result, "torch_version"),
        "device_name": env_value(job.result, "device_name"),
    }


def _finished_moment(job: Job) -> datetime:
    return job.finished_at or job.created_at


def _earlier_jobs_of_model_and_node(job: Job, model_names: list[str] | None = None):
    """Succeeded benchmarks of the same model (or of model_names) on the same node that finished
    before ``job``, newest first."""
    moment = _finished_moment(job)
    return (
        Job.objects.filter(
            kind=JobKind.BENCHMARK,
            status=JobStatus.SUCCEEDED,
            model_name__in=model_names or [job.model_name],
            node_name=job.node_name,
        )
        .exclude(pk=job.pk)
        .filter(Q(finished_at__lt=moment) | Q(finished_at=moment, pk__lt=job.pk))
        .order_by("-finished_at", "-pk")
    )


def _key(job: Job, may_differ: tuple[str, ...]) -> dict[str, Any]:
    key = comparison_key(job)
    return {name: value for name, value in key.items() if name not in may_differ}


def find_baselines(
    job: Job,
    batch_sizes: set[int],
    *,
    model_names: list[str] | None = None,
    may_differ: tuple[str, ...] = (),
) -> dict[int, tuple[Job, Run]]:
    """For each batch size, the most recent earlier job with the same comparison key and its run
    there (absent: none). model_names and may_differ widen the search to other models (a parent
    version's results), ignoring those parts of the key."""
    key = _key(job, may_differ)
    wanted = set(batch_sizes)
    found: dict[int, tuple[Job, Run]] = {}
    # Ids and params first, then one result at a time: a result carries every raw time and decoding
    # it is what costs, so jobs that never asked for a wanted batch size are skipped unread.
    candidates = _earlier_jobs_of_model_and_node(job, model_names).values_list("pk", "params")[
        :MAX_LOOKBACK_JOBS
    ]
    for candidate_id, params in candidates:
        if not wanted:
            break
        asked = params.get("batch_sizes") if isinstance(params, dict) else None
        if isinstance(asked, list) and not wanted.intersection(asked):
            continue
        candidate = Job.objects.filter(pk=candidate_id).first()
        if candidate is None:  # deleted meanwhile
            continue
        if _key(candidate, may_differ) != key:
            continue
        for run in runs_of(candidate.result):
            if run.ok and run.batch_size in wanted:
                found[run.batch_size] = (candidate, run)
                wanted.discard(run.batch_size)
    return found


def lineage_parent(job: Job) -> tuple[str, list[str]] | None:
    """("name@N" of the parent version, the model names its results were recorded under) for a job
    on a registered version that has a parent; None otherwise. A zoo original's results include
    those of the zoo model itself (its bare name runs the same weights)."""
    version = job.model_version
    parent = version.parent if version is not None else None
    if parent is None:
        return None
    label = f"{parent.model.name}@{parent.version}"
    names = [label]
    if parent.produced_by == ZOO_ORIGINAL:
        names.append(parent.model.name)
    return label, names


def _ci_text(run: Run) -> str:
    if run.ci95_ms is None:
        return "no 95% CI (too few samples)"
    return f"95% CI ±{run.ci95_rel_half_width * 100:.1f}%"


def judge(run: Run, baseline: Run, threshold: float) -> tuple[str, str]:
    """(verdict, reason in words) for one batch size; both runs are ``ok``."""
    assert run.p50_ms is not None and baseline.p50_ms is not None
    ratio = run.p50_ms / baseline.p50_ms
    change = f"p50 {(ratio - 1) * 100:+.1f}%"
    if 1.0 - threshold <= ratio <= 1.0 + threshold:
        return Verdict.NO_CHANGE, f"{change}, within the {threshold * 100:g}% threshold"
    limit = f"±{UNSTABLE_CI_REL_HALF_WIDTH * 100:g}%"
    loose = [
        f"{which} is unstable ({_ci_text(r)}, over {limit})"
        for which, r in (("this run", run), ("the baseline", baseline))
        if r.too_loose_for_a_verdict
    ]
    if loose:
        return Verdict.INCONCLUSIVE, f"{change} crosses the {threshold * 100:g}% threshold, but " + (
            " and ".join(loose)
        )
    assert run.ci95_ms is not None and baseline.ci95_ms is not None  # stable runs have one
    (low, high), (base_low, base_high) = run.ci95_ms, baseline.ci95_ms
    if low <= base_high and base_low <= high:
        return (
            Verdict.INCONCLUSIVE,
            f"{change} crosses the {threshold * 100:g}% threshold, but the 95% CIs of the medians "
            "overlap: the difference is not statistically clear",
        )
    clear = (
        f"{change}, beyond the {threshold * 100:g}% threshold, and the 95% CIs of the medians do not overlap"
    )
    return (Verdict.REGRESSION if ratio > 1.0 else Verdict.IMPROVEMENT), clear


def _parent_basis(basis: dict[str, Any], parent_label: str, baseline_job: Job) -> dict[str, Any]:
    return {
        **basis,
        "via": "parent",
        "baseline_model": parent_label,
        "baseline_runtime": runtime_of(baseline_job.params, baseline_job.result),
    }


def record_regressions(job: Job) -> list[Regression]:
    """Judge a succeeded benchmark against its baselines and store one verdict per batch size that
    has a baseline (see the module docstring for the rule); returns them ordered by batch size.

    Idempotent: calling it again replaces the job's earlier verdicts. A job that did not succeed, or
    has no earlier comparable result, gets none."""
    if job.kind != JobKind.BENCHMARK or job.status != JobStatus.SUCCEEDED:
        return []
    threshold = regression_threshold()
    runs = {run.batch_size: run for run in runs_of(job.result) if run.ok}
    baselines = find_baselines(job, set(runs))
    via_parent: dict[int, str] = {}
    parent = lineage_parent(job) if set(runs) - set(baselines) else None
    if parent is not None:
        label, names = parent
        missing = set(runs) - set(baselines)
        for batch_size, found in find_baselines(
            job, missing, model_names=names, may_differ=PARENT_MAY_DIFFER
        ).items():
            baselines[batch_size] = found
            via_parent[batch_size] = label
    basis = comparison_key(job)
    verdicts = []
    for batch_size, (baseline_job, baseline_run) in sorted(baselines.items()):
        run = runs[batch_size]
        if run.p50_ms is None or baseline_run.p50_ms is None or baseline_run.p50_ms <= 0:
            continue
        verdict, reason = judge(run, baseline_run, threshold)
        verdicts.append(
            Regression(
                job=job,
                baseline_job=baseline_job,
                batch_size=batch_size,
                verdict=verdict,
                baseline_p50_ms=baseline_run.p50_ms,
                p50_ms=run.p50_ms,
                baseline_ci95_low_ms=baseline_run.ci95_low_ms,
                baseline_ci95_high_ms=baseline_run.ci95_high_ms,
                ci95_low_ms=run.ci95_low_ms,
                ci95_high_ms=run.ci95_high_ms,
                ratio=run.p50_ms / baseline_run.p50_ms,
                threshold=threshold,
                basis=_parent_basis(basis, via_parent[batch_size], baseline_job)
                if batch_size in via_parent
                else basis,
                reason=reason,
            )
        )
    with transaction.atomic():
        Regression.objects.filter(job=job).delete()
        Regression.objects.bulk_create(verdicts)
    _publish(job, verdicts)
    return verdicts


def _publish(job: Job, verdicts: list[Regression]) -> None:
    """Benchmark regressions are a rule type (dashboard.alerting.targets): each judged job is one
    observation per model and node, 1 when a batch size regressed, else 0."""
    from dashboard.alerting.feed import publish_observations
    from dashboard.alerting.targets import BENCH_METRIC

    if verdicts:
        regressed = any(v.verdict == Verdict.REGRESSION for v in verdicts)
        moment = _finished_moment(job).timestamp()
        publish_observations([(job.node_name, BENCH_METRIC + job.model_name, None, moment, float(regressed))])
