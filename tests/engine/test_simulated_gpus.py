"""Simulated GPUs (`perfmon up --demo-gpus N`): the real Nvml adapter reading fake_nvml's simulation."""

from __future__ import annotations

import pytest

from workers.sampler import nvml as nvml_module
from workers.sampler.fake_nvml import SIMULATED_GPU_NAME, FakePynvml, SimulatedPynvml, h100
from workers.sampler.node_info import describe_node
from workers.sampler.nvml import Nvml


class StepClock:
    def __init__(self) -> None:
        self.now_s = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now_s


def test_simulated_gpus_read_as_named_h100s_with_uuids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nvml_module, "pynvml", SimulatedPynvml(2))
    nvml = Nvml.open()
    gpus = nvml.sample()
    assert [g.name for g in gpus] == [SIMULATED_GPU_NAME] * 2
    assert len({g.uuid for g in gpus}) == 2 and all(g.uuid.startswith("GPU-") for g in gpus)
    assert nvml.simulated is True
    info = describe_node("demo", nvml)
    assert info["simulated"] is True
    assert info["gpu_status"] == "ok"
    assert [g["name"] for g in info["gpus"]] == [SIMULATED_GPU_NAME] * 2


def test_a_real_driver_is_not_called_simulated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nvml_module, "pynvml", FakePynvml([h100()]))
    nvml = Nvml.open()
    assert nvml.simulated is False
    assert describe_node("real", nvml)["simulated"] is False
    assert describe_node("cpu-only", None)["simulated"] is False


def test_simulated_readings_move_over_time_and_stay_plausible(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = StepClock()
    monkeypatch.setattr(nvml_module, "pynvml", SimulatedPynvml(2, clock=clock))
    nvml = Nvml.open()
    readings = []
    for _ in range(60):
        readings.append(nvml.sample())
        clock.now_s += 1.0
    for index in (0, 1):
        util = [r[index].utilization_gpu_percent for r in readings]
        power = [r[index].power_draw_w for r in readings]
        temp = [r[index].temperature_c for r in readings]
        used = [r[index].memory_used_bytes for r in readings]
        assert all(0 <= u <= 100 for u in util)
        assert all(0 < p <= readings[0][index].power_limit_w for p in power)
        assert all(25 <= t <= 85 for t in temp)
        assert all(0 < m < readings[0][index].memory_total_bytes for m in used)
        # A minute of samples sees the load swing, not a constant.
        assert max(util) - min(util) >= 20
        assert max(power) - min(power) >= 100
        assert max(temp) - min(temp) >= 5
        assert len(set(used)) > 1
    # The two GPUs are not in lockstep.
    assert [r[0].utilization_gpu_percent for r in readings] != [
        r[1].utilization_gpu_percent for r in readings
    ]


def test_one_sample_sees_one_state_of_each_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = StepClock()
    fake = SimulatedPynvml(1, clock=clock)
    monkeypatch.setattr(nvml_module, "pynvml", fake)
    nvml = Nvml.open()
    gpu = nvml.sample()[0]
    # Memory used and free come from one reading: they add up to the total.
    assert gpu.memory_used_bytes + gpu.memory_free_bytes == gpu.memory_total_bytes


@pytest.mark.parametrize("count", [0, 17])
def test_a_count_out_of_range_is_refused(count: int) -> None:
    with pytest.raises(ValueError, match="1 to 16"):
        SimulatedPynvml(count)
