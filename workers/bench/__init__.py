"""Benchmarking: time a model's forward pass and record the environment it ran in.

Names are imported on first use (PEP 562): the web server validates job params with
``workers.bench.spec`` and must not pay for torch, which the harness imports."""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "BenchResult": "harness",
    "Cancelled": "harness",
    "ConcurrencyRun": "harness",
    "MultiDeviceRun": "harness",
    "RunTimes": "harness",
    "run_benchmark": "harness",
    "BenchSpec": "spec",
    "capture_env": "env",
    "LatencyStats": "stats",
    "iqr": "stats",
    "median_ci": "stats",
    "summarize": "stats",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'workers.bench' has no attribute {name!r}")
    return getattr(importlib.import_module(f"workers.bench.{_WHERE[name]}"), name)
