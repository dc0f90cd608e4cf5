"""A point that fails, or a cancellation, keeps the points already measured: the result is partial."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from workers.bench import BenchSpec, run_benchmark
from workers.bench.harness import Cancelled
from workers.zoo import InputSpec

FLAT_4 = InputSpec(shape=(None, 4), dtype="float32", low=0.0, high=1.0)
QUICK = {"iterations": 5, "warmup_iterations": 1, "threads": 1, "min_duration_s": 0.02, "time_budget_s": 0.2}


class BreaksAtEight(nn.Module):
    """Fine at every batch size but 8, where a layer's shapes disagree (not an out-of-memory)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] == 8:
            raise ValueError("shape mismatch in layer 3")
        return x * 2


def test_a_point_that_raises_ends_with_its_error_and_the_sweep_goes_on() -> None:
    spec = BenchSpec(batch_sizes=(1, 8, 2), **QUICK)
    result = run_benchmark(BreaksAtEight(), FLAT_4, spec).to_json()

    assert [r["batch_size"] for r in result["runs"]] == [1, 8, 2]
    failed = result["runs"][1]
    assert failed["error"] == "ValueError at batch 8: shape mismatch in layer 3"
    assert "Traceback (most recent call last)" in failed["error_detail"]
    assert "in forward" in failed["error_detail"], "the traceback reaches the model's own frame"
    assert failed["iterations"] == 0 and failed["times_ms"] == []
    for ok in (result["runs"][0], result["runs"][2]):
        assert ok["error"] is None and ok["latency_ms"]["p50"] > 0, "measured before and after the failure"
    assert (result["partial"], result["cancelled"], result["failed_points"], result["ok_points"]) == (
        True,
        False,
        1,
        2,
    )


def test_a_concurrency_level_that_raises_keeps_the_batch_points() -> None:
    class BreaksUnderLoad(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if getattr(self, "armed", False):
                raise RuntimeError("not thread-safe")
            return x

    model = BreaksUnderLoad()
    spec = BenchSpec(batch_sizes=(1,), concurrency=(2,), load_duration_s=0.1, **QUICK)

    def arm(fraction: float, step: str) -> None:
        model.armed = step.startswith("concurrency")

    result = run_benchmark(model, FLAT_4, spec, on_progress=arm).to_json()
    assert result["runs"][0]["error"] is None
    assert result["concurrency_runs"][0]["error"].startswith("RuntimeError at concurrency 2: not thread-safe")
    assert result["partial"] is True


def test_a_clean_sweep_is_not_partial() -> None:
    result = run_benchmark(BreaksAtEight(), FLAT_4, BenchSpec(batch_sizes=(1, 2), **QUICK)).to_json()
    assert (result["partial"], result["failed_points"], result["ok_points"]) == (False, 0, 2)


def test_a_cancelled_sweep_hands_back_the_points_it_measured() -> None:
    spec = BenchSpec(batch_sizes=(1, 2, 4), **QUICK)
    phases: list[str] = []

    def track(fraction: float, step: str) -> None:
        phases.append(step)

    def stop_at_batch_4() -> bool:
        return bool(phases) and phases[-1].startswith("batch 4")

    with pytest.raises(Cancelled) as caught:
        run_benchmark(BreaksAtEight(), FLAT_4, spec, on_progress=track, should_stop=stop_at_batch_4)
    partial = caught.value.result
    assert partial is not None and partial.cancelled and partial.partial
    assert [r.batch_size for r in partial.runs] == [1, 2], "the finished points, not the interrupted one"
    assert all(r.error is None and r.times_ms for r in partial.runs)
    assert partial.to_json()["partial"] is True
