"""CSV export of a job's result: a benchmark's one row per batch size, then one per concurrency
level; an optimization's before/after rows (OPTIMIZE_CSV_COLUMNS). Units in the header, figures
rounded to what the measurement can tell."""

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
    if job.kind in _OPTIMIZE_KINDS:
        return optimize_result_csv(job)
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


# The before/after rows of an optimize or auto_optimize job: one per measured model and batch size.
OPTIMIZE_CSV_COLUMNS = (
    "job_id",
    "model",
    "node",
    "device",
    "threads",
    "kind",
    "row",  # "original", the pass (optimize) or the candidate's pipeline (auto_optimize)
    "role",  # before, after (optimize); before, candidate, chosen (auto_optimize)
    "backend",
    "batch_size",
    "p50_ms",
    "p99_ms",
    "throughput_per_s",
    "speedup",
    "size_bytes",
    "params",
    "nonzero_params",
    "accuracy",
    "agreement",
    "accuracy_drop",  # relative to the original: (original - now) / original
    "slower",
    "qualifies",
    "error",
)
_OPTIMIZE_KINDS = ("optimize", "auto_optimize")


def _scores(row: dict) -> list[object]:
    score = row.get("score")
    return [score, None] if row.get("score_name") == "accuracy" else [None, score]


def optimize_result_csv(job: Job) -> str:
    """OPTIMIZE_CSV_COLUMNS: the original, then each pass's result (a failed pass keeps a row with
    its error), per batch size; or for auto_optimize the original and every candidate at the
    search's batch size. Ratios against the original as the job page shows them."""
    from dashboard.results.optimize import auto_view, optimize_view

    params = job.params if isinstance(job.params, dict) else {}
    context = [
        job.pk,
        job.model_name,
        job.node_name,
        params.get("device", "cpu"),
        params.get("threads"),
        job.kind,
    ]
    rows: list[list[object]] = []
    if job.kind == "auto_optimize":
        view = auto_view(job.result)
        batch = view["constraints"].get("batch_size")
        for c in ([view["original"]] if view["original"] else []) + view["candidates"]:
            role = "before" if c.get("original") else ("chosen" if c["chosen"] else "candidate")
            rows.append(
                [c["label"] if not c.get("original") else "original", role, c["backend"], batch,
                 _round(c["p50"], MS_DECIMALS), _round(c["p99"], MS_DECIMALS), _round(c["throughput"], RATE_DECIMALS),
                 _round(c["speedup"], 4), c["size_bytes"], c["params"], c["nonzero_params"], *_scores(c),
                 _round(c["drop"], 6), None, None if c.get("original") else c["qualifies"], c["error"]]
            )  # fmt: skip
    else:
        for r in optimize_view(job.result)["rows"]:
            if r["failed"]:
                rows.append([r["label"], "after"] + [None] * 14 + [r["error"]])
                continue
            role = "before" if r.get("original") else "after"
            for cell in r["cells"]:
                rows.append(
                    [r["label"], role, r["backend"], cell["batch_size"], _round(cell["p50"], MS_DECIMALS),
                     _round(cell["p99"], MS_DECIMALS), _round(cell["throughput"], RATE_DECIMALS),
                     _round(cell["speedup"], 4), r["size_bytes"], r["params"], r["nonzero_params"], *_scores(r),
                     _round(r["drop"], 6), None if r.get("original") else r["slower"], None, None]
                )  # fmt: skip
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(OPTIMIZE_CSV_COLUMNS)
    for row in rows:
        writer.writerow([_cell(value) for value in context + row])
    return buffer.getvalue()
