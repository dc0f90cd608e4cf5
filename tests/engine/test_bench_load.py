"""Concurrency sweeps and multi-GPU replicas: threads that really run at once."""

from __future__ import annotations

import threading
import time

import pytest
import torch
from torch import nn

from workers import zoo
from workers.bench import BenchSpec, Cancelled, MultiDeviceRun, run_benchmark
from workers.bench.load import measure_replicas
from workers.zoo import InputSpec

FLAT_8 = InputSpec(shape=(None, 8), dtype="float32", low=0.0, high=1.0)


class Sleepy(nn.Module):
    """At least 4 ms per request; sleep releases the GIL, as torch's kernels do. Counts its calls and
    the most that were ever in flight at once: how many clients the harness really ran together."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with self.lock:
            self.calls += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        time.sleep(0.004)
        with self.lock:
            self.in_flight -= 1
        return x


def _spec(**kwargs: object) -> BenchSpec:
    base = {"batch_sizes": (1,), "iterations": 5, "warmup_iterations": 1, "threads": 1, "time_budget_s": 0.1}
    return BenchSpec(**{**base, **kwargs})  # type: ignore[arg-type]


def test_a_concurrency_sweep_reports_each_load_level() -> None:
    spec = _spec(concurrency=[4, 1, 2, 2], load_duration_s=0.4)
    model = Sleepy()
    result = run_benchmark(model, FLAT_8, spec).to_json()
    runs = result["concurrency_runs"]

    assert result["spec"]["concurrency"] == [1, 2, 4]  # sorted, de-duplicated
    assert [r["concurrency"] for r in runs] == [1, 2, 4]
    for r in runs:
        assert r["batch_size"] == 1 and r["error"] is None
        assert set(r["latency_ms"]) == {"p50", "p90", "p95", "p99", "mean", "std", "min", "max"}
        assert r["latency_ms"]["p50"] >= 4.0  # each request still takes its 4 ms (or more, when busy)
        assert r["duration_s"] >= 0.4  # the window ends with the first answer past its deadline
        assert r["requests_per_s"] == pytest.approx(r["requests"] / r["duration_s"])
    # Clients overlap: all four were inside the model at once (they meet at a barrier, then each
    # request sleeps 4 ms). Achieved rates depend on the machine's load, so they are not asserted.
    assert model.max_in_flight == 4


def test_a_cpu_bound_model_under_concurrency_runs_on_the_zoo() -> None:
    entry = zoo.get("StudentModel")
    spec = _spec(concurrency=[1, 2], load_duration_s=0.2)
    runs = run_benchmark(entry.build(), entry.input_spec, spec).to_json()["concurrency_runs"]
    assert [r["concurrency"] for r in runs] == [1, 2]
    assert all(r["requests"] >= 1 and r["latency_ms"]["p50"] > 0 for r in runs)


def test_cancelling_during_a_load_level_stops_every_client() -> None:
    threads_before = threading.active_count()
    polls = []
    model = Sleepy()
    calls_when_stopped = []

    def stop_after_a_while() -> bool:
        polls.append(1)
        if len(polls) > 4:  # past the batch point, inside the concurrency phase
            calls_when_stopped.append(model.calls)
            return True
        return False

    spec = _spec(concurrency=[4], load_duration_s=30.0)
    with pytest.raises(Cancelled, match="concurrency 4"):
        run_benchmark(model, FLAT_8, spec, should_stop=stop_after_a_while)
    assert threading.active_count() == threads_before  # every client has ended
    # Each client checks the stop flag between requests: after the stop, a few more requests at
    # most (a generous bound for a preempted caller), not the 30 s (~30,000 requests) of the level.
    assert model.calls - calls_when_stopped[0] < 1_000


def test_an_error_in_a_client_thread_ends_that_point_with_the_error() -> None:
    class FailsUnderLoad(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if threading.current_thread() is not threading.main_thread():
                raise ValueError("not thread-safe")
            return x

    # A client thread's exception reaches the caller, which ends the point with it (the sweep goes on).
    result = run_benchmark(FailsUnderLoad(), FLAT_8, _spec(concurrency=[2], load_duration_s=0.2)).to_json()
    (point,) = result["concurrency_runs"]
    assert "not thread-safe" in point["error"]
    assert result["runs"][0]["error"] is None  # the batch sweep before it was measured


def test_replicas_run_side_by_side_and_scaling_is_measured_against_one() -> None:
    # The multi-GPU mechanics with CPU stand-ins: two sleeping replicas overlap fully.
    x = torch.zeros(4, 8)
    single, single_wall_s = measure_replicas([(torch.device("cpu"), Sleepy(), x)], 0.3, 1, lambda: None)
    shared = Sleepy()  # both replicas share it, so it sees them overlap
    both, wall_s = measure_replicas(
        [(torch.device("cpu"), shared, x), (torch.device("cpu"), shared, x)], 0.3, 1, lambda: None
    )
    result = MultiDeviceRun(
        batch_size=4,
        devices=("cuda:0", "cuda:1"),
        single_times_ms=tuple(single[0]),
        single_wall_s=single_wall_s,
        per_device_ms=tuple(tuple(t) for t in both),
        wall_s=wall_s,
    ).to_json()
    assert [d["device"] for d in result["per_device"]] == ["cuda:0", "cuda:1"]
    assert all(d["iterations"] >= 1 for d in result["per_device"])
    assert shared.max_in_flight == 2  # side by side, not one after the other
    assert result["total_throughput_per_s"] == pytest.approx(
        sum(d["throughput_per_s"] for d in result["per_device"])
    )
    # Efficiency is the joint throughput over twice the single replica's, both measured the same way;
    # its value depends on the machine's load, so only the definition is asserted.
    assert result["scaling_efficiency"] == pytest.approx(
        result["total_throughput_per_s"] / (2 * result["single_device_throughput_per_s"])
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="this node has CUDA, so the refusal cannot be observed")
def test_devices_without_cuda_are_refused_before_anything_runs() -> None:
    model = Sleepy()
    spec = _spec(devices=["cuda:0", "cuda:1"])
    assert spec.device == "cuda:0"  # the sweep runs on the first of them
    with pytest.raises(ValueError, match="devices needs CUDA GPUs, but this node has none"):
        run_benchmark(model, FLAT_8, spec)


def test_devices_are_checked_against_the_target_nodes_gpu_count() -> None:
    spec = _spec(devices=["cuda:0", "cuda:1"])
    spec.check_supported(cuda_device_count=2)  # a node with two GPUs can run it
    with pytest.raises(ValueError, match="cuda:1 requested but this node has 1 CUDA device"):
        spec.check_supported(cuda_device_count=1)
    with pytest.raises(ValueError, match="needs CUDA GPUs, but this node has none"):
        spec.check_supported(cuda_device_count=0)


@pytest.mark.gpu
def test_one_replica_per_gpu_reports_total_throughput_and_efficiency() -> None:
    devices = [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    entry = zoo.get("TeacherModel")
    spec = BenchSpec(
        batch_sizes=(64,), iterations=10, devices=devices, time_budget_s=1.0, load_duration_s=0.5
    )
    result = run_benchmark(entry.build(), entry.input_spec, spec).to_json()
    (point,) = result["multi_device_runs"]
    assert point["devices"] == devices and point["error"] is None
    assert point["total_throughput_per_s"] > 0 and point["single_device_throughput_per_s"] > 0
    assert 0.3 <= point["scaling_efficiency"] <= 1.2
    assert [d["device_name"] for d in result["env"]["devices"]] == [
        torch.cuda.get_device_name(d) for d in devices
    ]
