"""CSV export of a benchmark result: one row per batch size, then one per concurrency level;
units in the header, figures rounded to what the measurement can tell."""

from __future__ import annotations

import csv
import io

from dashboard.models import Job
from dashboard.results.runs import (
    ConcurrencyRun,
    Run,
    concurrency_runs_of,
    device_of,
    precision_of,
    runtime_of,
)
from dashboard.results.runs import runs_of as batch_runs_of
from dashboard.results.summary import threads_of

CSV_COLUMNS = (
    "job_id",
    "model",
    "node",
    "device",
    "precision",
    "threads",
    "test",
    "batch_size",
    "concurrency",
    "p50_ms",
    "p90_ms",
    "p95_ms",
    "p99_ms",
    "mean_ms",
    "std_ms",
    "min_ms",
    "max_ms",
    "iqr_ms",
    "ci95_low_ms",
    "ci95_high_ms",
    "throughput_per_s",
    "requests_per_s",
    "iterations",
    "peak_memory_bytes",
    "unstable",
    "stop_reason",
    "error",
    # Appended, so readers of the earlier columns by position keep working.
    "runtime",
    "compile_s",
)
# Timers resolve 1 ns, but run-to-run noise is far above 0.1 us: 4 decimals of a ms is plenty.
MS_DECIMALS = 4
RATE_DECIMALS = 2
_LATENCY_KEYS = ("p50", "p90", "p95", "p99", "mean", "std", "min", "max")


def csv_filename(job: Job) -> str:
    return f"perfmon-job-{job.pk}.csv"


def _cell(value: object) -> str:
    # Empty, not "None" or 0, for a figure the harness did not report.
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _round(value: float | None, decimals: int) -> float | None:
    return None if value is None else round(value, decimals)


def _batch_row(run: Run, runtime: str) -> list[object]:
    latency = [_round(run.latency_ms[key], MS_DECIMALS) for key in _LATENCY_KEYS]
    return [
        "batch",
        run.batch_size,
        None,
        *latency,
        _round(run.iqr_ms, MS_DECIMALS),
        _round(run.ci95_low_ms, MS_DECIMALS),
        _round(run.ci95_high_ms, MS_DECIMALS),
        _round(run.throughput_per_s, RATE_DECIMALS),
        None,
        run.iterations,
        run.peak_memory_bytes,
        run.unstable,
        run.stop_reason,
        run.error,
        runtime,
        _round(run.compile_s, 3),
    ]


def _concurrency_row(point: ConcurrencyRun, error: str, runtime: str) -> list[object]:
    latency = [_round(point.latency_ms[key], MS_DECIMALS) for key in _LATENCY_KEYS]
    # Each client sends single requests: batch 1, and throughput is requests per second.
    return ["concurrency", 1, point.concurrency, *latency, None, None, None, None,
            _round(point.requests_per_s, RATE_DECIMALS), None, None, None, None, error, runtime, None]  # fmt: skip


def result_csv(job: Job) -> str:
    """The header row, then one row per batch size of ``job.result`` (test "batch"), then one per
    concurrency level (test "concurrency"); a failed point keeps its row, with empty figures and
    the error. Quoting is the csv module's (RFC 4180), lines end in CRLF."""
    context = [
        job.pk,
        job.model_name,
        job.node_name,
        device_of(job.params, job.result),
        precision_of(job.params, job.result),
        threads_of(job.params, job.result),
    ]
    runtime = runtime_of(job.params, job.result)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for run in batch_runs_of(job.result):
        writer.writerow([_cell(value) for value in context + _batch_row(run, runtime)])
    raw_points = job.result.get("concurrency_runs") if isinstance(job.result, dict) else None
    raw_points = raw_points if isinstance(raw_points, list) else []
    for point, raw in zip(concurrency_runs_of(job.result), raw_points, strict=True):
        error = str(raw.get("error") or "") if isinstance(raw, dict) else ""
        writer.writerow([_cell(value) for value in context + _concurrency_row(point, error, runtime)])
    return buffer.getvalue()
