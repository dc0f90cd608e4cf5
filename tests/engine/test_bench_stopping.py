"""The stopping rule and warm-up, on models whose latency is known because they sleep."""

from __future__ import annotations

import random
import time

import torch
from torch import nn

from workers.bench import BenchSpec, run_benchmark
from workers.zoo import InputSpec

FLAT_8 = InputSpec(shape=(None, 8), dtype="float32", low=0.0, high=1.0)


class FixedSleep(nn.Module):
    def __init__(self, sleep_s: float) -> None:
        super().__init__()
        self.sleep_s = sleep_s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(self.sleep_s)
        return x


class RandomSleep(nn.Module):
    """Latency spread uniformly over [low_s, high_s]: a median that needs thousands of samples."""

    def __init__(self, low_s: float, high_s: float) -> None:
        super().__init__()
        self.low_s, self.high_s = low_s, high_s
        self.rng = random.Random(7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(self.rng.uniform(self.low_s, self.high_s))
        return x


class SlowStart(nn.Module):
    """Starts at ``slow_s`` per call and decays by 25% a call towards ``fast_s``, like a model that
    autotunes or fills caches during its first calls."""

    def __init__(self, slow_s: float, fast_s: float) -> None:
        super().__init__()
        self.calls = 0
        self.slow_s, self.fast_s = slow_s, fast_s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(self.fast_s + (self.slow_s - self.fast_s) * 0.75**self.calls)
        self.calls += 1
        return x


def _one_run(model: nn.Module, **spec_kwargs: object) -> dict:
    spec = BenchSpec(batch_sizes=(1,), threads=1, **spec_kwargs)  # type: ignore[arg-type]
    return run_benchmark(model, FLAT_8, spec).to_json()["runs"][0]


def test_a_steady_model_converges_quickly() -> None:
    started = time.monotonic()
    run = _one_run(
        FixedSleep(0.002), iterations=20, warmup_iterations=2, min_duration_s=0.1, time_budget_s=5.0
    )
    assert run["stop_reason"] == "converged"
    assert time.monotonic() - started < 2.5  # far inside the 5 s budget
    assert run["iterations"] >= 20 and run["timed_s"] >= 0.1
    assert not run["unstable"]
    p50 = run["latency_ms"]["p50"]
    assert 2.0 <= p50 < 4.0
    # Converged means the 95% CI of the median is within +/-2% of it.
    assert p50 * 0.98 <= run["ci95_low_ms"] <= p50 <= run["ci95_high_ms"] <= p50 * 1.02


def test_a_noisy_model_runs_out_of_time_and_is_flagged_unstable() -> None:
    started = time.monotonic()
    run = _one_run(RandomSleep(0.0005, 0.005), iterations=10, warmup_iterations=2, time_budget_s=0.6)
    elapsed_s = time.monotonic() - started
    assert run["stop_reason"] == "time_budget"
    assert run["unstable"]
    assert run["iqr_ms"] / run["latency_ms"]["p50"] > 0.10
    # The budget covers warm-up and timing; the margin is for a busy test machine.
    assert run["timed_s"] <= 0.6
    assert elapsed_s < 0.6 + 0.6


def test_the_minimum_count_and_duration_both_hold_before_converging() -> None:
    run = _one_run(
        FixedSleep(0.001), iterations=150, warmup_iterations=2, min_duration_s=0.3, time_budget_s=5.0
    )
    assert run["stop_reason"] == "converged"
    assert run["iterations"] >= 150
    assert run["timed_s"] >= 0.3


def test_max_iterations_caps_a_run_that_would_go_on() -> None:
    run = _one_run(
        FixedSleep(0.0005),
        iterations=30,
        max_iterations=40,
        warmup_iterations=2,
        min_duration_s=5.0,
        time_budget_s=10.0,
    )
    assert run["stop_reason"] == "max_iterations"
    assert run["iterations"] == 40


def test_warm_up_runs_until_timings_settle() -> None:
    model = SlowStart(slow_s=0.021, fast_s=0.001)
    run = _one_run(model, iterations=20, warmup_iterations=4, min_duration_s=0.1, time_budget_s=3.0)
    # The minimum of 4 was not enough: call 10 is still 1 ms (100%) over the floor.
    assert run["warmup_iterations"] > 10
    assert run["warmup_settled"]
    assert model.calls == run["warmup_iterations"] + run["iterations"]
    # The slow first calls (call 5 is still 4.7 ms over the floor) never reached the timed samples.
    assert run["latency_ms"]["max"] < 5.0
    assert run["latency_ms"]["p50"] < 1.5


def test_a_model_slower_than_its_budget_still_times_one_iteration() -> None:
    run = _one_run(FixedSleep(0.15), iterations=10, warmup_iterations=1, time_budget_s=0.1)
    assert run["stop_reason"] == "time_budget"
    assert run["iterations"] == 1
    assert run["warmup_iterations"] == 1
