"""NodeSample.metrics(): the flat (name, gpu, value) list that history and Prometheus store."""

from __future__ import annotations

import time

import psutil
import pytest

from workers.sampler import nvml as nvml_module
from workers.sampler.fake_nvml import FakePynvml, a10_without_extras, h100
from workers.sampler.host import HostProbe
from workers.sampler.loop import Sampler
from workers.sampler.sample import METRIC_UNITS, HostSample, NodeSample


def _host(**overrides: object) -> HostSample:
    values: dict[str, object] = {
        "cpu_percent": 12.5,
        "per_cpu_percent": (10.0, 15.0),
        "load_avg_1m": 0.5,
        "load_avg_5m": 0.25,
        "load_avg_15m": 0.125,
        "memory_used_bytes": 4_000,
        "memory_total_bytes": 16_000,
        "memory_percent": 25.0,
        "swap_used_bytes": 0,
        "swap_total_bytes": 0,
        "memory_available_bytes": 12_000,
        "counters": {"cpu_seconds_total": {"user": 5.0}, "disk_read_bytes_total": 99},
    }
    return HostSample(**(values | overrides))  # type: ignore[arg-type]


def test_host_metrics_are_the_numeric_readings_and_skip_none() -> None:
    metrics = NodeSample("n1", 0.0, _host(), (), "no GPU").metrics()
    assert metrics == [
        ("host.cpu_percent", None, 12.5),
        ("host.load_avg_1m", None, 0.5),
        ("host.load_avg_5m", None, 0.25),
        ("host.load_avg_15m", None, 0.125),
        ("host.memory_used_bytes", None, 4000.0),
        ("host.memory_available_bytes", None, 12000.0),
        ("host.memory_total_bytes", None, 16000.0),
        ("host.memory_percent", None, 25.0),
        ("host.swap_used_bytes", None, 0.0),
        ("host.swap_total_bytes", None, 0.0),
    ]  # first tick: no disk or network rates yet; per-core CPU and counters never


def test_gpu_metrics_carry_the_gpu_index_and_leave_out_unsupported_fields(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(nvml_module, "pynvml", FakePynvml([h100(), a10_without_extras()]))
    sample = Sampler("n1", host_probe=HostProbe()).tick()
    metrics = sample.metrics()
    gpu0 = {name: value for name, gpu, value in metrics if gpu == 0}
    gpu1 = {name: value for name, gpu, value in metrics if gpu == 1}
    assert gpu0["gpu.utilization_gpu_percent"] == 55.0
    assert gpu0["gpu.power_draw_w"] == pytest.approx(250.123)
    assert gpu0["gpu.pcie_rx_bytes_per_s"] == 500_000 * 1024
    assert gpu0["gpu.ecc_errors_corrected"] == 3.0
    assert gpu0["gpu.fan_percent"] == 40.0
    assert set(gpu0) == {n for n in METRIC_UNITS if n.startswith("gpu.")}
    assert set(gpu0) - set(gpu1) == {
        "gpu.fan_percent",
        "gpu.power_draw_w",
        "gpu.power_limit_w",
        "gpu.ecc_errors_corrected",
        "gpu.ecc_errors_uncorrected",
        "gpu.pcie_tx_bytes_per_s",
        "gpu.pcie_rx_bytes_per_s",
    }
    assert all(isinstance(v, float) for _, _, v in metrics)
    assert {gpu for _, gpu, _ in metrics} == {None, 0, 1}


def test_every_metric_has_a_unit() -> None:
    assert METRIC_UNITS["host.cpu_percent"] == "%"
    assert METRIC_UNITS["host.disk_read_bytes_per_s"] == "bytes/s"
    assert METRIC_UNITS["host.memory_used_bytes"] == "bytes"
    assert METRIC_UNITS["host.load_avg_1m"] == ""
    assert METRIC_UNITS["gpu.temperature_c"] == "°C"
    assert METRIC_UNITS["gpu.power_draw_w"] == "W"
    assert METRIC_UNITS["gpu.sm_clock_mhz"] == "MHz"
    assert METRIC_UNITS["gpu.ecc_errors_uncorrected"] == "count"
    assert METRIC_UNITS["gpu.pcie_tx_bytes_per_s"] == "bytes/s"
    assert set(METRIC_UNITS.values()) <= {"%", "bytes", "bytes/s", "°C", "W", "MHz", "count", ""}
    host = HostProbe()
    host.sample()
    # CPU time by mode needs the kernel's counters to move between the two reads (a 10 ms clock
    # tick); two reads within one tick give no percentages, rightly.
    read = psutil.cpu_times()
    while psutil.cpu_times() == read:
        time.sleep(0.002)
    names = {name for name, _, _ in NodeSample("n1", 0.0, host.sample(), (), "no GPU").metrics()}
    assert names == {n for n in METRIC_UNITS if n.startswith("host.")}  # second tick: rates too
