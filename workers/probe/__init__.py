"""A deployment probe (no Django here): a short harness measurement of the served model with the
deployment's serving config, and the HTTP round trip to its inference endpoint."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from workers.bench.spec import BenchSpec
from workers.bench.stats import percentile


def probe_spec(params: Mapping[str, Any], budget_s: float) -> BenchSpec:
    """One batch size, a small fixed budget: a probe watches a trend, it is not a benchmark."""
    return BenchSpec(
        batch_sizes=(int(params.get("batch_size", 1)),),
        iterations=20,
        warmup_iterations=5,
        device=params.get("device", "cpu"),
        precision=params.get("precision", "fp32"),
        threads=params.get("threads"),
        time_budget_s=budget_s,
        min_duration_s=min(0.5, budget_s),
        max_iterations=2000,
        runtime=params.get("runtime", "eager"),
    )


def measure(model: Any, input_spec: Any, params: Mapping[str, Any], budget_s: float) -> dict[str, float]:
    """{"p50", "p95", "p99", "mean"} in ms per forward pass; ValueError when the point failed."""
    from workers.bench.harness import run_benchmark

    result = run_benchmark(model, input_spec, probe_spec(params, budget_s))
    point = result.runs[0]
    if point.error is not None:
        raise ValueError(point.error)
    stats = point.stats
    return {"p50": stats.p50, "p95": stats.p95, "p99": stats.p99, "mean": stats.mean}


def time_endpoint(url: str, requests: int = 20, timeout_s: float = 5.0) -> dict[str, float]:
    """{"e2e_p50", "e2e_p95", "e2e_p99"} in ms: GET round trips to ``url``, each on a new
    connection (what a client without keep-alive pays). Any HTTP answer counts, an error status
    included: the round trip is what is measured. OSError when no request got an answer."""
    times_ms: list[float] = []
    last_error: Exception | None = None
    for _ in range(requests):
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 (http(s) checked on input)
                response.read(1 << 16)
        except urllib.error.HTTPError as exc:  # an answer all the same
            exc.read(1 << 16)
        except OSError as exc:
            last_error = exc
            continue
        times_ms.append((time.perf_counter() - start) * 1000.0)
    if not times_ms:
        raise OSError(f"no answer from {url}: {last_error}")
    times_ms.sort()
    return {
        "e2e_p50": percentile(times_ms, 0.50),
        "e2e_p95": percentile(times_ms, 0.95),
        "e2e_p99": percentile(times_ms, 0.99),
    }
