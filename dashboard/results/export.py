"""CSV export of a benchmark result: one row per run, figures at full precision, units in the header."""

from __future__ import annotations

import csv
import io

from dashboard.models import Job
from dashboard.results.runs import Run, device_of, precision_of, runs_of

CSV_COLUMNS = (
    "job_id",
    "model",
    "node",
    "device",
    "precision",
    "batch_size",
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
    "iterations",
    "peak_memory_bytes",
    "unstable",
    "stop_reason",
    "error",
)


def csv_filename(job: Job) -> str:
    return f"perfmon-job-{job.pk}.csv"


def _cell(value: object) -> str:
    # Empty, not "None" or 0, for a figure the harness did not report; repr() keeps every digit.
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _row(job: Job, device: str, precision: str, run: Run) -> list[str]:
    latency = [run.latency_ms[key] for key in ("p50", "p90", "p95", "p99", "mean", "std", "min", "max")]
    values: list[object] = [
        job.pk,
        job.model_name,
        job.node_name,
        device,
        precision,
        run.batch_size,
        *latency,
        run.iqr_ms,
        run.ci95_low_ms,
        run.ci95_high_ms,
        run.throughput_per_s,
        run.iterations,
        run.peak_memory_bytes,
        run.unstable,
        run.stop_reason,
        run.error,
    ]
    return [_cell(value) for value in values]


def result_csv(job: Job) -> str:
    """The header row, then one row per run of ``job.result`` (a failed point keeps its row, with
    empty figures and the error). Quoting is the csv module's (RFC 4180), lines end in CRLF."""
    device = device_of(job.params, job.result)
    precision = precision_of(job.params, job.result)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for run in runs_of(job.result):
        writer.writerow(_row(job, device, precision, run))
    return buffer.getvalue()
