"""Side-by-side comparison of 2 to 8 succeeded benchmark jobs; the first one is the baseline."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dashboard.models import Job, JobKind, JobStatus
from dashboard.results.runs import Run, device_of, precision_of, runs_of, runtime_of

MIN_JOBS = 2
MAX_JOBS = 8
# Ratios within this fraction of 1.0 are noise, shown neither better nor worse.
SAME_WITHIN = 0.02


class CompareError(ValueError):
    """A comparison we refuse, with a reason fit to show the user as is."""


# The largest id a database integer holds; more digits than that overflow SQLite's INTEGER.
MAX_JOB_ID = 2**63 - 1
_ID = re.compile(r"[0-9]{1,19}")


def job_id(token: str) -> int | None:
    """The job id a ?ids= token names, or None: ASCII digits only (str.isdigit() accepts "²",
    which int() refuses), from 1 to MAX_JOB_ID."""
    token = token.strip()
    if not _ID.fullmatch(token):
        return None
    value = int(token)
    return value if 1 <= value <= MAX_JOB_ID else None


def parse_ids(values: Iterable[str]) -> list[int]:
    """Job ids from ``?ids=3,5,9`` and/or repeated ``?ids=3&ids=5`` (what a checkbox form sends), in order."""
    ids: list[int] = []
    for value in values:
        for token in value.split(","):
            token = token.strip()
            if not token:
                continue
            number = job_id(token)
            if number is None:
                raise CompareError(f"{token[:40]!r} is not a job number; give ids like ?ids=3,5,9")
            if number in ids:
                raise CompareError(f"job {number} is listed twice")
            ids.append(number)
    if len(ids) < MIN_JOBS:
        raise CompareError(f"pick at least {MIN_JOBS} jobs to compare (got {len(ids)})")
    if len(ids) > MAX_JOBS:
        raise CompareError(f"at most {MAX_JOBS} jobs can be compared at once (got {len(ids)})")
    return ids


def load_jobs(ids: list[int]) -> list[Job]:
    """The jobs in the order asked; CompareError names the first one that is missing or has no result."""
    by_id = Job.objects.in_bulk(ids)
    jobs = []
    for job_id in ids:
        job = by_id.get(job_id)
        if job is None:
            raise CompareError(f"job {job_id} does not exist")
        if job.kind != JobKind.BENCHMARK:
            raise CompareError(f"job {job_id} is a {job.kind} job; only benchmarks can be compared")
        if job.status != JobStatus.SUCCEEDED:
            raise CompareError(
                f"job {job_id} is {job.status}; only succeeded benchmarks have results to compare"
            )
        if not any(run.ok for run in runs_of(job.result)):
            raise CompareError(f"job {job_id} has no successful run to compare")
        jobs.append(job)
    return jobs


def ratio(value: float | None, baseline: float | None) -> float | None:
    """value / baseline, or None when either is missing or the baseline is not positive."""
    if value is None or baseline is None or baseline <= 0:
        return None
    return value / baseline


def verdict(value_ratio: float | None, lower_is_better: bool) -> str:
    """ "better", "worse" or "same" (within SAME_WITHIN of the baseline); "" without a ratio."""
    if value_ratio is None:
        return ""
    if abs(value_ratio - 1.0) <= SAME_WITHIN:
        return "same"
    improved = value_ratio < 1.0 if lower_is_better else value_ratio > 1.0
    return "better" if improved else "worse"


@dataclass(frozen=True)
class Cell:
    """One job at one batch size. ``run`` is None where the job did not measure that batch size."""

    job: Job
    run: Run | None
    is_baseline: bool
    p50_ratio: float | None = None
    p99_ratio: float | None = None
    throughput_ratio: float | None = None

    @property
    def p50_verdict(self) -> str:
        return verdict(self.p50_ratio, lower_is_better=True)

    @property
    def p99_verdict(self) -> str:
        return verdict(self.p99_ratio, lower_is_better=True)

    @property
    def throughput_verdict(self) -> str:
        return verdict(self.throughput_ratio, lower_is_better=False)


@dataclass(frozen=True)
class Row:
    batch_size: int
    cells: list[Cell]


@dataclass(frozen=True)
class Column:
    """A job's header: what it ran and where, so that unlike settings are visible."""

    job: Job
    device: str
    precision: str
    env: dict[str, Any]
    runtime: str = "eager"

    @property
    def label(self) -> str:
        return f"#{self.job.pk} {self.job.model_name}"


@dataclass(frozen=True)
class Comparison:
    columns: list[Column]
    rows: list[Row]

    @property
    def baseline(self) -> Job:
        return self.columns[0].job

    def chart_data(self) -> dict[str, Any]:
        """What static/js/compare-charts.js draws: one series per job, points by batch size."""
        series = []
        for index, column in enumerate(self.columns):
            points = []
            for row in self.rows:
                run = row.cells[index].run
                if run is not None and run.ok:
                    points.append(
                        {
                            "batch_size": row.batch_size,
                            "p50_ms": run.p50_ms,
                            "p99_ms": run.p99_ms,
                            "throughput_per_s": run.throughput_per_s,
                        }
                    )
            series.append({"job_id": column.job.pk, "label": column.label, "points": points})
        return {"batch_sizes": [row.batch_size for row in self.rows], "jobs": series}


def _runs_by_batch(job: Job) -> dict[int, Run]:
    runs: dict[int, Run] = {}
    for run in runs_of(job.result):
        if run.batch_size is None:
            continue
        # A successful measurement wins over a failed one of the same batch size.
        if run.batch_size not in runs or (run.ok and not runs[run.batch_size].ok):
            runs[run.batch_size] = run
    return runs


def compare_jobs(jobs: list[Job]) -> Comparison:
    """Rows for every batch size any job measured (ascending), each job's run and its ratios to jobs[0]."""
    runs = [_runs_by_batch(job) for job in jobs]
    batch_sizes = sorted({size for job_runs in runs for size in job_runs})
    rows = []
    for batch_size in batch_sizes:
        base = runs[0].get(batch_size)
        base_ok = base if base is not None and base.ok else None
        cells = []
        for index, job in enumerate(jobs):
            run = runs[index].get(batch_size)
            if index == 0 or run is None or not run.ok or base_ok is None:
                cells.append(Cell(job=job, run=run, is_baseline=index == 0))
                continue
            cells.append(
                Cell(
                    job=job,
                    run=run,
                    is_baseline=False,
                    p50_ratio=ratio(run.p50_ms, base_ok.p50_ms),
                    p99_ratio=ratio(run.p99_ms, base_ok.p99_ms),
                    throughput_ratio=ratio(run.throughput_per_s, base_ok.throughput_per_s),
                )
            )
        rows.append(Row(batch_size=batch_size, cells=cells))
    columns = [
        Column(
            job=job,
            device=device_of(job.params, job.result),
            precision=precision_of(job.params, job.result),
            env=job.result.get("env") if isinstance(job.result.get("env"), dict) else {},
            runtime=runtime_of(job.params, job.result),
        )
        for job in jobs
    ]
    return Comparison(columns=columns, rows=rows)


def recent_comparable_jobs(limit: int = 50) -> list[Job]:
    """Succeeded benchmarks for the picker, newest first, without their (large) results."""
    return list(
        Job.objects.filter(kind=JobKind.BENCHMARK, status=JobStatus.SUCCEEDED).defer("result")[:limit]
    )
