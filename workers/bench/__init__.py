"""Benchmarking: time a model's forward pass and record the environment it ran in."""

from __future__ import annotations

from workers.bench.env import capture_env
from workers.bench.harness import BenchResult, BenchSpec, Cancelled, RunTimes, run_benchmark
from workers.bench.stats import LatencyStats, summarize

__all__ = [
    "BenchResult",
    "BenchSpec",
    "Cancelled",
    "LatencyStats",
    "RunTimes",
    "capture_env",
    "run_benchmark",
    "summarize",
]
