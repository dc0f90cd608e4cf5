"""A job's result in brief, for lists (GET /api/jobs, the jobs page, live pushes, the admin): the
figures per point without the raw times, a headline, and what makes the job page's header readable.

A full result carries up to 10,000 raw latencies per batch size; lists never do."""

from __future__ import annotations

from typing import Any

from dashboard.results.runs import concurrency_runs_of, number, runs_of

# How parameters and environment keys read on the page; unknown keys show as they are.
PARAM_LABELS = {
    "batch_sizes": "Batch sizes",
    "iterations": "Iterations (minimum)",
    "max_iterations": "Iterations (maximum)",
    "warmup_iterations": "Warm-up iterations (minimum)",
    "device": "Device",
    "precision": "Precision",
    "threads": "CPU threads",
    "time_budget_s": "Time budget per batch size",
    "min_duration_s": "Minimum timed duration per batch size",
    "concurrency": "Concurrency sweep (clients)",
    "devices": "GPUs (multi-GPU test)",
    "load_duration_s": "Duration of each load test",
    "runtime": "Runtime",
    "compile_mode": "torch.compile mode",
    "ort_provider": "ONNX Runtime provider",
    "ort_graph_optimization": "ONNX Runtime graph optimization",
    "dataset": "Labeled data set (id)",
}
ENV_LABELS = {
    "torch_version": "PyTorch",
    "python_version": "Python",
    "hostname": "Host",
    "platform": "Platform",
    "cpu_model": "CPU",
    "cpu_count": "CPU cores",
    "threads": "CPU threads",
    "interop_threads": "Inter-op threads",
    "cpu_capability": "CPU vector ISA",
    "precision": "Precision",
    "device": "Device",
    "device_name": "Device name",
    "devices": "GPUs (multi-GPU test)",
    "cuda_version": "CUDA",
    "cudnn_version": "cuDNN",
    "driver_version": "NVIDIA driver",
    "runtime": "Runtime (what ran)",
    "compile_mode": "torch.compile mode",
    "ort_provider": "ONNX Runtime provider",
    "ort_session_provider": "ONNX Runtime session provider",
    "ort_graph_optimization": "ONNX Runtime graph optimization",
    "onnxruntime_version": "ONNX Runtime",
    "onnx_source": "ONNX graph",
    "ort_max_abs_diff": "ONNX vs torch max abs difference",
}


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def headline(result: Any) -> dict[str, Any] | None:
    """The two figures a list shows: p50 at the smallest batch size measured (latency as one
    request sees it) and the highest throughput of the sweep, each with its batch size; None
    when no point succeeded."""
    ok = [run for run in runs_of(result) if run.ok]
    if not ok:
        return None
    smallest = min(ok, key=lambda run: run.batch_size or 0)
    with_throughput = [run for run in ok if run.throughput_per_s is not None]
    best = max(with_throughput, key=lambda run: run.throughput_per_s or 0.0) if with_throughput else None
    return {
        "p50_ms": smallest.p50_ms,
        "p50_batch_size": smallest.batch_size,
        "throughput_per_s": best.throughput_per_s if best else None,
        "throughput_batch_size": best.batch_size if best else None,
    }


def threads_of(params: Any, result: Any) -> int | None:
    """CPU threads the run used: the harness's record first, then what was asked."""
    for source in (_dict(_dict(result).get("spec")), _dict(_dict(result).get("env")), _dict(params)):
        value = number(source.get("threads"))
        if value is not None:
            return int(value)
    return None


def summarize(result: Any) -> dict[str, Any] | None:
    """Per point: batch size, p50/p99, throughput, iterations, error, stop reason; no raw times."""
    if not isinstance(result, dict):
        return None
    runs = [
        {
            "batch_size": run.batch_size,
            "p50_ms": run.p50_ms,
            "p99_ms": run.p99_ms,
            "throughput_per_s": run.throughput_per_s,
            "iterations": run.iterations,
            "stop_reason": run.stop_reason or None,
            "unstable": run.unstable,
            "error": run.error or None,
        }
        for run in runs_of(result)
    ]
    concurrency = [
        {
            "concurrency": point.concurrency,
            "requests_per_s": point.requests_per_s,
            "p50_ms": point.latency_ms["p50"],
            "p99_ms": point.latency_ms["p99"],
            "error": (raw.get("error") or None) if isinstance(raw, dict) else None,
        }
        for point, raw in zip(concurrency_runs_of(result), result.get("concurrency_runs") or [], strict=False)
    ]
    failed = sum(1 for point in runs + concurrency if point["error"])
    return {
        "partial": bool(result.get("partial")) or failed > 0,
        "cancelled": bool(result.get("cancelled")),
        "failed_points": failed,
        "measured_points": len(runs) + len(concurrency) - failed,
        "runs": runs,
        "concurrency_runs": concurrency,
        "headline": _headline(result),
    }


def _headline(result: dict) -> dict[str, Any] | None:
    if result.get("kind") in ("optimize", "auto_optimize"):
        from dashboard.results.optimize import optimize_headline

        return optimize_headline(result)
    return headline(result)


def without_raw_times(result: Any) -> Any:
    """The full result less each run's ``times_ms`` (GET /api/jobs/<id>?raw=0)."""
    if not isinstance(result, dict):
        return result
    runs = [
        {key: value for key, value in run.items() if key != "times_ms"} if isinstance(run, dict) else run
        for run in result.get("runs") or []
    ]
    return {**result, "runs": runs}


def iterations_ran(result: Any) -> tuple[int, int] | None:
    """(fewest, most) timed iterations over the successful points, or None."""
    counts = [run.iterations for run in runs_of(result) if run.ok and run.iterations is not None]
    return (min(counts), max(counts)) if counts else None


def labelled(values: dict, labels: dict[str, str]) -> list[tuple[str, str]]:
    """(label, text) pairs for a parameters or environment table: lists joined, units added."""
    rows = []
    for key, value in values.items():
        if key == "devices" and isinstance(value, list) and value and isinstance(value[0], dict):
            text = ", ".join(f"{d.get('device')} ({d.get('device_name') or '?'})" for d in value)
        elif isinstance(value, list):
            text = ", ".join(str(v) for v in value) if value else "none"
        elif value is None or value == "":
            text = "–"
        elif key.endswith("_s") and number(value) is not None:
            text = f"{value:g} s"
        else:
            text = str(value)
        rows.append((labels.get(key, key.replace("_", " ")), text))
    return rows
