"""Latency benchmark of one model over several batch sizes.

Follows torch.utils.benchmark's Timer: warm up first, time every iteration, synchronise CUDA
before reading results. Raw per-iteration times are kept; statistics are computed on read.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from workers.bench.env import capture_env
from workers.bench.stats import LatencyStats, summarize
from workers.zoo import InputSpec

MAX_BATCH_SIZE = 4096
# Progress callbacks go to the database and a websocket; a few per second is plenty.
PROGRESS_INTERVAL_S = 0.2
_DEVICE_RE = re.compile(r"cpu|cuda(:\d+)?")


class Cancelled(Exception):
    """The caller's ``should_stop()`` returned true; the benchmark stopped early."""


@dataclass(frozen=True)
class BenchSpec:
    """What to measure. After construction ``warmup_iterations`` and ``threads`` are ints.

    ``warmup_iterations`` defaults to max(10, min(iterations // 5, 200)); ``threads`` (CPU
    intra-op threads) defaults to ``os.cpu_count()``. Invalid values raise ``ValueError``.
    """

    batch_sizes: tuple[int, ...]
    iterations: int
    warmup_iterations: int | None = None
    device: str = "cpu"
    threads: int | None = None

    def __post_init__(self) -> None:
        # Lists arrive from JSON; a frozen spec holds a tuple so it stays hashable.
        object.__setattr__(self, "batch_sizes", tuple(self.batch_sizes))
        if not self.batch_sizes:
            raise ValueError("batch_sizes must not be empty")
        for b in self.batch_sizes:
            if isinstance(b, bool) or not isinstance(b, int) or not 1 <= b <= MAX_BATCH_SIZE:
                raise ValueError(f"each batch size must be an integer from 1 to {MAX_BATCH_SIZE}, not {b!r}")
        if isinstance(self.iterations, bool) or not isinstance(self.iterations, int) or self.iterations < 1:
            raise ValueError(f"iterations must be an integer >= 1, not {self.iterations!r}")
        if self.warmup_iterations is None:
            object.__setattr__(self, "warmup_iterations", max(10, min(self.iterations // 5, 200)))
        elif not isinstance(self.warmup_iterations, int) or self.warmup_iterations < 0:
            raise ValueError(f"warmup_iterations must be an integer >= 0, not {self.warmup_iterations!r}")
        if not isinstance(self.device, str) or not _DEVICE_RE.fullmatch(self.device):
            raise ValueError(f'device must be "cpu", "cuda" or "cuda:N", not {self.device!r}')
        if self.threads is None:
            object.__setattr__(self, "threads", os.cpu_count() or 1)
        elif isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1:
            raise ValueError(f"threads must be an integer >= 1, not {self.threads!r}")

    def to_json(self) -> dict[str, Any]:
        return {
            "batch_sizes": list(self.batch_sizes),
            "iterations": self.iterations,
            "warmup_iterations": self.warmup_iterations,
            "device": self.device,
            "threads": self.threads,
        }


@dataclass(frozen=True)
class RunTimes:
    """Raw latencies (ms per forward pass) of one batch size."""

    batch_size: int
    times_ms: tuple[float, ...]

    @property
    def stats(self) -> LatencyStats:
        return summarize(self.times_ms)

    @property
    def throughput_per_s(self) -> float:
        """Samples per second over the whole timed loop: batch_size * iterations / total timed seconds.

        A sum over all iterations, not batch_size / p50, so slow outliers lower it as they would in use.
        """
        total_s = sum(self.times_ms) / 1000.0
        return self.batch_size * len(self.times_ms) / total_s if total_s > 0 else float("inf")

    def to_json(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size,
            "latency_ms": self.stats.to_json(),
            "throughput_per_s": self.throughput_per_s,
            "iterations": len(self.times_ms),
            "times_ms": list(self.times_ms),
        }


@dataclass(frozen=True)
class BenchResult:
    """A measurement with its context: the spec, the environment and the raw times."""

    spec: BenchSpec
    env: dict[str, Any]
    runs: tuple[RunTimes, ...]

    def to_json(self) -> dict[str, Any]:
        return {"runs": [r.to_json() for r in self.runs], "env": self.env, "spec": self.spec.to_json()}


class _Progress:
    """Reports progress and polls for cancellation, at most every PROGRESS_INTERVAL_S except at phase changes."""

    def __init__(
        self,
        total_steps: int,
        on_progress: Callable[[float, str], None] | None,
        should_stop: Callable[[], bool] | None,
    ) -> None:
        self._total_steps = max(total_steps, 1)
        self._on_progress = on_progress
        self._should_stop = should_stop
        self._done_steps = 0
        self._last_report = float("-inf")

    def advance(self, steps: int, text: str, *, force: bool = False) -> None:
        self._done_steps += steps
        now = time.monotonic()
        if not force and now - self._last_report < PROGRESS_INTERVAL_S:
            return
        self._last_report = now
        if self._should_stop is not None and self._should_stop():
            raise Cancelled(f"cancelled at {text}")
        if self._on_progress is not None:
            self._on_progress(min(self._done_steps / self._total_steps, 1.0), text)

    def finish(self) -> None:
        # No cancellation check here: the work is done and its result is worth keeping.
        if self._on_progress is not None:
            self._on_progress(1.0, "done")


def _time_cpu(model: nn.Module, x: torch.Tensor, n: int, progress: _Progress, text: str) -> list[float]:
    times_ms = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        model(x)
        times_ms.append((time.perf_counter_ns() - t0) / 1e6)
        progress.advance(1, text)
    return times_ms


def _time_cuda(model: nn.Module, x: torch.Tensor, n: int, progress: _Progress, text: str) -> list[float]:
    # Kernels run asynchronously: a host clock around model(x) measures only the launch.
    # Events recorded on the stream bracket the GPU work itself, and one synchronize at the
    # end avoids stalling the queue between iterations.
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
    for start, end in zip(starts, ends, strict=True):
        start.record()
        model(x)
        end.record()
        progress.advance(1, text)
    torch.cuda.synchronize()
    return [start.elapsed_time(end) for start, end in zip(starts, ends, strict=True)]


def _device_scope(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    # CUDA events and the default stream belong to the current device, so make the target current.
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _check_device(device: torch.device) -> None:
    if device.type != "cuda":
        return
    if not torch.cuda.is_available():
        raise ValueError("CUDA requested but torch.cuda.is_available() is false on this node")
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"{device} requested but this node has {torch.cuda.device_count()} CUDA device(s)")


def run_benchmark(
    model: nn.Module,
    input_spec: InputSpec,
    spec: BenchSpec,
    *,
    on_progress: Callable[[float, str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> BenchResult:
    """Time ``model`` forward passes for each batch size in ``spec``; times are ms per pass.

    The model is moved to ``spec.device`` in place and put in eval mode. torch's CPU thread
    count is set to ``spec.threads`` for the run and restored afterwards. ``on_progress``
    receives (fraction done 0..1, step text); ``should_stop`` is polled at the same moments
    and ``Cancelled`` is raised when it returns true.
    """
    device = torch.device(spec.device)
    _check_device(device)
    assert spec.threads is not None and spec.warmup_iterations is not None  # resolved by BenchSpec
    warmup = spec.warmup_iterations
    progress = _Progress(len(spec.batch_sizes) * (warmup + spec.iterations), on_progress, should_stop)
    time_loop = _time_cuda if device.type == "cuda" else _time_cpu
    # The same inputs on every run and every node, without disturbing the caller's RNG.
    generator = torch.Generator().manual_seed(0)

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(spec.threads)
    try:
        env = capture_env(spec.device, spec.threads)
        model = model.to(device).eval()
        runs = []
        with torch.inference_mode(), _device_scope(device):
            for batch_size in spec.batch_sizes:
                x = input_spec.make(batch_size, device=device, generator=generator)
                text = f"batch {batch_size}: warm-up"
                progress.advance(0, text, force=True)
                for _ in range(warmup):
                    model(x)
                    progress.advance(1, text)
                _sync(device)
                text = f"batch {batch_size}: timing"
                progress.advance(0, text, force=True)
                times_ms = time_loop(model, x, spec.iterations, progress, text)
                runs.append(RunTimes(batch_size, tuple(times_ms)))
        progress.finish()
    finally:
        torch.set_num_threads(previous_threads)
    return BenchResult(spec=spec, env=env, runs=tuple(runs))
