from __future__ import annotations

import os
import time

import pytest
import torch
from torch import nn

from workers import zoo
from workers.bench.harness import BenchSpec, Cancelled, RunTimes, run_benchmark
from workers.zoo import InputSpec

FLAT_8 = InputSpec(shape=(None, 8), dtype="float32", low=0.0, high=1.0)
# Short runs: tests check behaviour, not figures.
QUICK = {"threads": 1, "min_duration_s": 0.05, "time_budget_s": 0.5}


class SleepyModel(nn.Module):
    """Takes at least a known wall time per forward pass, independent of the hardware; counts its calls."""

    def __init__(self, sleep_s: float) -> None:
        super().__init__()
        self.sleep_s = sleep_s
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        time.sleep(self.sleep_s)
        return x


def test_a_small_run_has_the_documented_shape() -> None:
    entry = zoo.get("SimpleModel")
    spec = BenchSpec(batch_sizes=(1, 4), iterations=20, **QUICK)
    result = run_benchmark(entry.build(), entry.input_spec, spec).to_json()

    assert [r["batch_size"] for r in result["runs"]] == [1, 4]
    for run in result["runs"]:
        # A minimum before converging (timing goes on until the median is known); only the time
        # budget, which a busy machine can reach first, ends a point below it.
        assert run["iterations"] >= 20 or run["stop_reason"] == "time_budget"
        assert len(run["times_ms"]) == run["iterations"]
        assert set(run["latency_ms"]) == {"p50", "p90", "p95", "p99", "mean", "std", "min", "max"}
        assert 0 < run["latency_ms"]["min"] <= run["latency_ms"]["p50"] <= run["latency_ms"]["max"]
        assert run["ci95_low_ms"] <= run["latency_ms"]["p50"] <= run["ci95_high_ms"]
        assert run["iqr_ms"] >= 0 and isinstance(run["unstable"], bool)
        assert run["stop_reason"] in {"converged", "time_budget", "max_iterations"}
        assert run["warmup_iterations"] >= 10 or not run["warmup_settled"]
        assert run["throughput_per_s"] > 0
        assert run["peak_memory_bytes"] >= 0 and run["peak_reserved_bytes"] is None
        assert run["error"] is None
    assert result["concurrency_runs"] == [] and result["multi_device_runs"] == []
    assert result["env"]["threads"] == 1
    assert result["env"]["device"] == "cpu"
    assert result["env"]["precision"] == "fp32"
    assert result["env"]["torch_version"] == torch.__version__
    assert result["spec"] == {
        "batch_sizes": [1, 4],
        "iterations": 20,
        "warmup_iterations": 10,
        "device": "cpu",
        "precision": "fp32",
        "threads": 1,
        "time_budget_s": 0.5,
        "min_duration_s": 0.05,
        "max_iterations": 10_000,
        "concurrency": [],
        "devices": [],
        "load_duration_s": 2.0,
        "runtime": "eager",
        "compile_mode": None,
        "ort_provider": None,
        "ort_graph_optimization": None,
    }
    assert result["env"]["runtime"] == "eager" and result["compile_s"] is None


def test_it_measures_a_known_latency() -> None:
    spec = BenchSpec(batch_sizes=(1,), iterations=10, warmup_iterations=1, **QUICK)
    result = run_benchmark(SleepyModel(0.005), FLAT_8, spec)
    p50_ms = result.runs[0].stats.p50
    # A sleep lasts at least what was asked; how much longer depends on the machine's load.
    assert p50_ms >= 5.0
    assert len(result.runs[0].times_ms) >= 10


def test_it_restores_the_thread_count() -> None:
    before = torch.get_num_threads()
    spec = BenchSpec(
        batch_sizes=(2,), iterations=3, warmup_iterations=0, threads=1 if before > 1 else 2, time_budget_s=0.2
    )
    run_benchmark(zoo.get("StudentModel").build(), zoo.get("StudentModel").input_spec, spec)
    assert torch.get_num_threads() == before


def test_progress_climbs_to_one_and_names_each_phase() -> None:
    calls: list[tuple[float, str]] = []
    spec = BenchSpec(batch_sizes=(1, 4), iterations=20, **QUICK)
    entry = zoo.get("SimpleModel")
    run_benchmark(entry.build(), entry.input_spec, spec, on_progress=lambda f, s: calls.append((f, s)))

    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions)
    assert all(0.0 <= f <= 1.0 for f in fractions)
    assert fractions[-1] == 1.0
    steps = [s for _, s in calls]
    for step in ["batch 1: warm-up", "batch 1: timing", "batch 4: warm-up", "batch 4: timing"]:
        assert step in steps


def test_progress_is_throttled() -> None:
    calls: list[float] = []
    spec = BenchSpec(batch_sizes=(1,), iterations=400, warmup_iterations=0, threads=1, time_budget_s=1.0)
    started = time.monotonic()
    run_benchmark(SleepyModel(0.001), FLAT_8, spec, on_progress=lambda f, s: calls.append(f))
    elapsed_s = time.monotonic() - started
    # The phase start, the switch to timing, the final 1.0, and one report per 0.2 s at most in between.
    assert len(calls) <= 3 + elapsed_s / 0.2 + 1
    assert len(calls) < 100


def test_should_stop_cancels_and_restores_threads() -> None:
    before = torch.get_num_threads()
    spec = BenchSpec(batch_sizes=(1, 4), iterations=50, threads=1)
    model = SleepyModel(0.0)
    with pytest.raises(Cancelled, match="batch 1"):
        run_benchmark(model, FLAT_8, spec, should_stop=lambda: True)
    assert model.calls == 0  # refused at the first poll, before the first forward pass
    assert torch.get_num_threads() == before


def test_a_cancel_mid_point_stops_at_the_next_poll() -> None:
    polls = []

    def stop_on_third_poll() -> bool:
        polls.append(time.monotonic())
        return len(polls) >= 3

    spec = BenchSpec(batch_sizes=(1,), iterations=10_000, threads=1, time_budget_s=30.0, min_duration_s=20.0)
    model = SleepyModel(0.001)
    with pytest.raises(Cancelled, match="batch 1"):
        run_benchmark(model, FLAT_8, spec, should_stop=stop_on_third_poll)
    assert len(polls) == 3  # stopped at the poll that said so
    # Polls come every 0.2 s between blocks of at most ~0.1 s of calls (each >= 1 ms here), so a
    # few hundred calls at most ran, not the 10,000 the point would have timed.
    assert model.calls < 2_000


def test_defaults_are_resolved() -> None:
    assert BenchSpec(batch_sizes=(1,), iterations=20).warmup_iterations == 10
    assert BenchSpec(batch_sizes=(1,), iterations=500).warmup_iterations == 100
    assert BenchSpec(batch_sizes=(1,), iterations=5000).warmup_iterations == 200
    assert BenchSpec(batch_sizes=(1,), iterations=20).threads == os.cpu_count()
    assert BenchSpec(batch_sizes=(1,), iterations=20).max_iterations == 10_000
    assert BenchSpec(batch_sizes=(1,), iterations=50_000).max_iterations == 50_000
    assert BenchSpec(batch_sizes=[1, 2], iterations=20).batch_sizes == (1, 2)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"batch_sizes": (), "iterations": 10},
        {"batch_sizes": (0,), "iterations": 10},
        {"batch_sizes": (4097,), "iterations": 10},
        {"batch_sizes": (1.5,), "iterations": 10},
        {"batch_sizes": (1,), "iterations": 0},
        {"batch_sizes": (1,), "iterations": 10, "warmup_iterations": -1},
        {"batch_sizes": (1,), "iterations": 10, "device": "tpu"},
        {"batch_sizes": (1,), "iterations": 10, "device": "cuda:x"},
        {"batch_sizes": (1,), "iterations": 10, "threads": 0},
        {"batch_sizes": (1,), "iterations": 10, "precision": "int8"},
        {"batch_sizes": (1,), "iterations": 10, "time_budget_s": 0},
        {"batch_sizes": (1,), "iterations": 10, "time_budget_s": 1.0, "min_duration_s": 2.0},
        {"batch_sizes": (1,), "iterations": 10, "max_iterations": 5},
        {"batch_sizes": (1,), "iterations": 10, "concurrency": (0,)},
        {"batch_sizes": (1,), "iterations": 10, "concurrency": (65,)},
        {"batch_sizes": (1,), "iterations": 10, "devices": ("cuda",)},
        {"batch_sizes": (1,), "iterations": 10, "devices": ("cpu",)},
        {"batch_sizes": (1,), "iterations": 10, "devices": ("cuda:0", "cuda:0")},
        {"batch_sizes": "1", "iterations": 10},
    ],
)
def test_invalid_specs_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        BenchSpec(**kwargs)


def test_throughput_counts_every_timed_iteration() -> None:
    run = RunTimes(batch_size=4, times_ms=(2.0, 2.0, 4.0))
    # 4 samples * 3 iterations / 0.008 s
    assert run.to_json()["throughput_per_s"] == pytest.approx(1500.0)
    assert run.to_json()["latency_ms"]["p50"] == 2.0


@pytest.mark.skipif(torch.cuda.is_available(), reason="this node has CUDA, so the refusal cannot be observed")
def test_cuda_without_cuda_is_a_clear_error() -> None:
    spec = BenchSpec(batch_sizes=(1,), iterations=1, device="cuda")
    with pytest.raises(ValueError, match=r"device 'cuda' needs CUDA GPUs, but this node has none"):
        run_benchmark(zoo.get("SimpleModel").build(), zoo.get("SimpleModel").input_spec, spec)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_cuda_run_times_on_the_gpu() -> None:
    entry = zoo.get("TeacherModel")
    spec = BenchSpec(
        batch_sizes=(1, 256), iterations=30, device="cuda", min_duration_s=0.2, time_budget_s=2.0
    )
    result = run_benchmark(entry.build(), entry.input_spec, spec)
    assert result.env["device_name"] == torch.cuda.get_device_name(0)
    assert result.env["cuda_version"] == torch.version.cuda
    for run in result.runs:
        assert len(run.times_ms) >= 30
        assert all(t > 0 for t in run.times_ms)
        # CUDA's own accounting: at least the weights and the input are allocated on the GPU.
        assert run.to_json()["peak_memory_bytes"] >= 784 * 4 * run.batch_size
        assert run.to_json()["peak_reserved_bytes"] >= run.to_json()["peak_memory_bytes"]
