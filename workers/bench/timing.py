"""Timing one (model, input) point: warm-up until settled, then timed iterations under a stopping rule.

Every iteration is timed on its own so percentiles are real (torch.utils.benchmark's blocked timing
only yields block means). The loops are kept bare, with the bookkeeping between blocks, so the
timer's own cost stays near the cost of two clock reads (``bench/harness_fidelity.py`` measures it).
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from workers.bench.spec import BenchSpec
from workers.bench.stats import median_ci_converged, percentile

StopReason = Literal["converged", "time_budget", "max_iterations"]

# The stopping rule: the 95% CI of the median within +/-2% of the median.
CI_CONFIDENCE = 0.95
CI_REL_HALF_WIDTH = 0.02
# Warm-up ends when a block's median is within this of the previous block's median.
WARMUP_SETTLE_REL = 0.05
# Warm-up may use at most this share of the point's time budget.
WARMUP_BUDGET_FRACTION = 0.3
# A warm-up block spans at least this long, so its median is not drawn from a handful of samples.
WARMUP_BLOCK_MIN_S = 0.05
# The stopping rule is checked (and progress reported) about this often.
CHECK_INTERVAL_S = 0.1

# (model, input, at most n iterations, host deadline in perf_counter_ns) -> per-iteration ms.
BlockTimer = Callable[[nn.Module, torch.Tensor, int, int], list[float]]
Tick = Callable[[str], None]


# A monotonic clock in integer nanoseconds; time.perf_counter_ns, or a fake one in tests.
ClockNs = Callable[[], int]


def cpu_block_timer(clock_ns: ClockNs = time.perf_counter_ns) -> BlockTimer:
    """A BlockTimer that times each forward pass with ``clock_ns``. Tests pass a fake clock that the
    model advances, so which calls were warm-up and which were timed does not depend on the machine."""

    def time_block(model: nn.Module, x: torch.Tensor, n: int, deadline_ns: int) -> list[float]:
        """Up to ``n`` forward passes, each timed with the host clock; stops after ``deadline_ns``."""
        clock = clock_ns
        raw_ns = []
        append = raw_ns.append
        for _ in range(n):
            t0 = clock()
            model(x)
            t1 = clock()
            append(t1 - t0)
            if t1 >= deadline_ns:
                break
        return [t / 1e6 for t in raw_ns]

    return time_block


time_block_cpu: BlockTimer = cpu_block_timer()


def time_block_cuda(model: nn.Module, x: torch.Tensor, n: int, deadline_ns: int) -> list[float]:
    """Up to ``n`` forward passes on the current CUDA stream, each bracketed by CUDA events.

    Kernels run asynchronously: a host clock around model(x) would measure only the launch.
    Events recorded on the stream bracket the GPU work itself, and one synchronize at the end
    of the block avoids stalling the queue between iterations.
    """
    clock = time.perf_counter_ns
    pairs = []
    for _ in range(n):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        model(x)
        end.record()
        pairs.append((start, end))
        if clock() >= deadline_ns:
            break
    torch.cuda.synchronize()
    return [start.elapsed_time(end) for start, end in pairs]


@dataclass(frozen=True)
class PointTimes:
    """The outcome of timing one point: raw timed latencies (ms) and how the run went."""

    times_ms: tuple[float, ...]
    stop_reason: StopReason
    warmup_iterations: int
    warmup_settled: bool
    timed_s: float
    off_cpu_fraction: float | None


def _without_gc(timer: BlockTimer) -> BlockTimer:
    """``timer`` with garbage collection paused inside each block, as timeit (and so
    torch.utils.benchmark) does: a collection triggered by other objects is not charged to one
    iteration, and runs between blocks instead. Reference counting still frees each pass's tensors.
    Only for the caller's thread: threads toggling the global switch at once could leave it off."""

    def timed(model: nn.Module, x: torch.Tensor, n: int, deadline_ns: int) -> list[float]:
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return timer(model, x, n, deadline_ns)
        finally:
            if was_enabled:
                gc.enable()

    return timed


def _median(xs: list[float]) -> float:
    return percentile(sorted(xs), 0.5)


def _fill(seconds: float, per_iteration_ms: float) -> int:
    """How many iterations of ``per_iteration_ms`` fit in ``seconds`` (at least 1)."""
    return max(1, math.ceil(seconds * 1000.0 / max(per_iteration_ms, 1e-6)))


def warm_up(
    model: nn.Module,
    x: torch.Tensor,
    spec: BenchSpec,
    timer: BlockTimer,
    deadline_ns: int,
    tick: Tick,
    clock_ns: ClockNs = time.perf_counter_ns,
) -> tuple[int, bool]:
    """Run at least ``spec.warmup_iterations`` untimed-for-the-result passes, in blocks, until two
    consecutive block medians agree within WARMUP_SETTLE_REL or ``deadline_ns`` passes.

    Returns (iterations run, settled). ``warmup_iterations == 0`` skips warm-up entirely.
    """
    minimum = spec.warmup_iterations or 0
    if minimum == 0:
        return 0, False
    # Two blocks make up the minimum, so the first settle check comes once it is met.
    block_n = max(1, math.ceil(minimum / 2))
    done = 0
    previous: float | None = None
    while True:
        times = timer(model, x, block_n, deadline_ns)
        done += len(times)
        tick("warm-up")
        median = _median(times)
        if (
            done >= minimum
            and previous is not None
            and abs(median - previous) <= WARMUP_SETTLE_REL * previous
        ):
            return done, True
        if clock_ns() >= deadline_ns:
            return done, False
        previous = median
        block_n = max(block_n, _fill(WARMUP_BLOCK_MIN_S, median))


def time_point(
    model: nn.Module,
    x: torch.Tensor,
    spec: BenchSpec,
    timer: BlockTimer,
    tick: Tick,
    *,
    clock_ns: ClockNs = time.perf_counter_ns,
    cpu_clock_ns: ClockNs = time.thread_time_ns,
) -> PointTimes:
    """Warm up, then time until the stopping rule or a cap ends the point.

    Stops with "converged" once there are >= ``spec.iterations`` samples, >= ``spec.min_duration_s``
    of timing, and the 95% CI of the median lies within +/-2% of it; else "max_iterations" at
    ``spec.max_iterations``; else "time_budget" when ``spec.time_budget_s`` (warm-up included) ends.
    At least one iteration is always timed. ``tick(phase)`` is called between blocks with "warm-up"
    or "timing" (progress reports; it raises to cancel). ``clock_ns`` (wall) and ``cpu_clock_ns``
    (this thread's CPU time) drive the deadlines and durations; ``timer`` should read the same clock.
    """
    assert spec.max_iterations is not None and spec.min_duration_s is not None  # resolved by BenchSpec
    on_cuda = timer is time_block_cuda
    timer = _without_gc(timer)
    started_ns = clock_ns()
    budget_ns = int(spec.time_budget_s * 1e9)
    deadline_ns = started_ns + budget_ns
    warmup_n, settled = warm_up(
        model, x, spec, timer, started_ns + int(budget_ns * WARMUP_BUDGET_FRACTION), tick, clock_ns
    )

    times: list[float] = []
    cpu_from_ns = cpu_clock_ns()
    timed_from_ns = clock_ns()
    min_duration_ns = int(spec.min_duration_s * 1e9)
    block_n = 1
    while True:
        block_n = min(block_n, spec.max_iterations - len(times))
        times.extend(timer(model, x, block_n, deadline_ns))
        tick("timing")
        now_ns = clock_ns()
        if (
            len(times) >= spec.iterations
            and now_ns - timed_from_ns >= min_duration_ns
            and median_ci_converged(sorted(times), CI_REL_HALF_WIDTH, CI_CONFIDENCE)
        ):
            reason: StopReason = "converged"
            break
        if len(times) >= spec.max_iterations:
            reason = "max_iterations"
            break
        if now_ns >= deadline_ns:
            reason = "time_budget"
            break
        block_n = _fill(CHECK_INTERVAL_S, _median(times[-block_n:]))
    timed_ns = clock_ns() - timed_from_ns
    return PointTimes(
        times_ms=tuple(times),
        stop_reason=reason,
        warmup_iterations=warmup_n,
        warmup_settled=settled,
        timed_s=timed_ns / 1e9,
        off_cpu_fraction=None if on_cuda else _off_cpu_fraction(cpu_clock_ns() - cpu_from_ns, timed_ns),
    )


def _off_cpu_fraction(cpu_ns: int, wall_ns: int) -> float:
    """The share of the timed wall time the timing thread spent off a CPU: preempted by other
    processes on a busy node (or sleeping in the model). Per-iteration percentiles hide short
    preemptions that blocked timing (torch.utils.benchmark) averages in, so this says how far the
    two may disagree. Not meaningful on CUDA, where the thread legitimately sleeps in synchronize()."""
    if wall_ns <= 0:
        return 0.0
    return min(1.0, max(0.0, 1.0 - cpu_ns / wall_ns))
