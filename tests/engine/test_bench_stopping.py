"""The stopping rule and warm-up, on models whose latency is known exactly: each call advances a
fake clock by a scripted amount, so what the harness decides (which calls were warm-up, which were
timed, why it stopped) does not depend on how busy the machine is."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
import torch
from torch import nn

from workers.bench import BenchSpec
from workers.bench.result import RunTimes
from workers.bench.timing import PointTimes, cpu_block_timer, time_point

MS_NS = 1_000_000


class FakeClock:
    """Nanoseconds that pass only when a model call says so."""

    def __init__(self) -> None:
        self.now_ns = 10**12

    def __call__(self) -> int:
        return self.now_ns


class Scripted(nn.Module):
    """Call i takes ``latency_ms(i)`` on ``clock``; ``calls`` lists every call's latency in order."""

    def __init__(self, clock: FakeClock, latency_ms: Callable[[int], float]) -> None:
        super().__init__()
        self.clock, self.latency_ms = clock, latency_ms
        self.calls: list[float] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ms = self.latency_ms(len(self.calls))
        self.calls.append(ms)
        self.clock.now_ns += round(ms * MS_NS)
        return x


def fixed(ms: float) -> Callable[[int], float]:
    return lambda _i: ms


def uniform(low_ms: float, high_ms: float) -> Callable[[int], float]:
    """Latency spread uniformly over [low, high]: a median that needs thousands of samples."""
    rng = random.Random(7)
    return lambda _i: rng.uniform(low_ms, high_ms)


def slow_start(slow_ms: float, fast_ms: float) -> Callable[[int], float]:
    """Starts at ``slow_ms`` and decays by 25% a call towards ``fast_ms``, like a model that
    autotunes or fills caches during its first calls."""
    return lambda i: fast_ms + (slow_ms - fast_ms) * 0.75**i


def _time(latency_ms: Callable[[int], float], **spec_kwargs: object) -> tuple[PointTimes, Scripted]:
    clock = FakeClock()
    model = Scripted(clock, latency_ms)
    spec = BenchSpec(batch_sizes=(1,), threads=1, **spec_kwargs)  # type: ignore[arg-type]
    timed = time_point(
        model,
        torch.zeros(1, 8),
        spec,
        cpu_block_timer(clock),
        lambda _phase: None,
        clock_ns=clock,
        cpu_clock_ns=clock,
    )
    return timed, model


def _json(timed: PointTimes) -> dict:
    return RunTimes(1, times_ms=timed.times_ms, stop_reason=timed.stop_reason).to_json()


def test_a_steady_model_converges_quickly() -> None:
    timed, model = _time(
        fixed(2.0), iterations=20, warmup_iterations=2, min_duration_s=0.1, time_budget_s=5.0
    )
    assert timed.stop_reason == "converged"
    # Stopped as soon as the minimum count and duration held: 0.1 s of 2 ms calls, far from 5 s.
    assert 50 <= len(timed.times_ms) <= 60 and timed.timed_s >= 0.1
    assert len(model.calls) == timed.warmup_iterations + len(timed.times_ms)
    run = _json(timed)
    assert not run["unstable"]
    p50 = run["latency_ms"]["p50"]
    assert p50 == 2.0
    # Converged means the 95% CI of the median is within +/-2% of it.
    assert p50 * 0.98 <= run["ci95_low_ms"] <= p50 <= run["ci95_high_ms"] <= p50 * 1.02


def test_a_noisy_model_runs_out_of_time_and_is_flagged_unstable() -> None:
    timed, model = _time(uniform(0.5, 5.0), iterations=10, warmup_iterations=2, time_budget_s=0.6)
    assert timed.stop_reason == "time_budget"
    run = _json(timed)
    # ~200 samples spread over 0.5..5 ms pin the median to about +/-10% only.
    assert run["unstable"]
    assert run["ci95_rel_half_width"] > 0.05
    assert run["iqr_ms"] / run["latency_ms"]["p50"] > 0.10  # still reported, for information
    # The budget covers warm-up and timing: the last call may end past it, by at most one call.
    assert sum(model.calls) <= 600 + 5.0


def test_the_minimum_count_and_duration_both_hold_before_converging() -> None:
    timed, _ = _time(fixed(1.0), iterations=150, warmup_iterations=2, min_duration_s=0.3, time_budget_s=5.0)
    assert timed.stop_reason == "converged"
    assert len(timed.times_ms) >= 300  # 0.3 s of 1 ms calls, though 150 and a tight CI came first
    assert timed.timed_s >= 0.3


def test_max_iterations_caps_a_run_that_would_go_on() -> None:
    timed, _ = _time(
        fixed(0.5),
        iterations=30,
        max_iterations=40,
        warmup_iterations=2,
        min_duration_s=5.0,
        time_budget_s=10.0,
    )
    assert timed.stop_reason == "max_iterations"
    assert len(timed.times_ms) == 40


def test_warm_up_runs_until_timings_settle() -> None:
    timed, model = _time(
        slow_start(slow_ms=21.0, fast_ms=1.0),
        iterations=20,
        warmup_iterations=4,
        min_duration_s=0.1,
        time_budget_s=3.0,
    )
    # The minimum of 4 was not enough: call 10 is still 1 ms (100%) over the floor.
    assert timed.warmup_iterations > 10
    assert timed.warmup_settled
    # The timed samples are exactly the calls after warm-up: the slow first calls never reach them.
    assert len(model.calls) == timed.warmup_iterations + len(timed.times_ms)
    assert list(timed.times_ms) == pytest.approx(model.calls[timed.warmup_iterations :], abs=1e-6)
    assert max(model.calls[: timed.warmup_iterations]) == 21.0


def test_a_model_slower_than_its_budget_still_times_one_iteration() -> None:
    timed, model = _time(fixed(150.0), iterations=10, warmup_iterations=1, time_budget_s=0.1)
    assert timed.stop_reason == "time_budget"
    assert len(timed.times_ms) == 1
    assert timed.warmup_iterations == 1
    assert len(model.calls) == 2
