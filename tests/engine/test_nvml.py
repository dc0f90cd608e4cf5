"""The real Nvml adapter against a fake pynvml module that behaves like nvidia-ml-py."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from workers.sampler import nvml as nvml_module
from workers.sampler.nvml import Nvml, NvmlUnavailable

GiB = 1024**3


class FakeNVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value


class FakePynvml:
    """The slice of pynvml that Nvml uses; error codes and enums copied from pynvml."""

    NVMLError = FakeNVMLError
    NVML_ERROR_UNINITIALIZED = 1
    NVML_ERROR_NOT_SUPPORTED = 3
    NVML_ERROR_NO_PERMISSION = 4
    NVML_ERROR_DRIVER_NOT_LOADED = 9
    NVML_ERROR_LIBRARY_NOT_FOUND = 12
    NVML_ERROR_GPU_IS_LOST = 15
    NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18
    NVML_ERROR_UNKNOWN = 999
    NVML_TEMPERATURE_GPU = 0
    NVML_CLOCK_SM = 1
    NVML_CLOCK_MEM = 2

    def __init__(self, gpus: list[dict[str, Any]], *, init_error: int | None = None) -> None:
        self.gpus = gpus
        self.init_error = init_error
        # (function name, gpu index or None) -> error code raised instead of answering
        self.failures: dict[tuple[str, int | None], int] = {}
        self.shutdowns = 0

    def _check(self, fn: str, index: int | None = None) -> None:
        code = self.failures.get((fn, index), self.failures.get((fn, None)))
        if code is not None:
            raise FakeNVMLError(code)

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise FakeNVMLError(self.init_error)

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        self._check("nvmlDeviceGetHandleByIndex", i)
        return i

    def nvmlSystemGetDriverVersion(self) -> bytes:
        return b"550.54.15"

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return 12040

    def _get(self, fn: str, h: int, key: str) -> Any:
        self._check(fn, h)
        return self.gpus[h][key]

    def nvmlDeviceGetName(self, h: int) -> str | bytes:
        return self._get("nvmlDeviceGetName", h, "name")

    def nvmlDeviceGetUUID(self, h: int) -> str | bytes:
        return self._get("nvmlDeviceGetUUID", h, "uuid")

    def nvmlDeviceGetPciInfo(self, h: int) -> SimpleNamespace:
        return SimpleNamespace(busId=self._get("nvmlDeviceGetPciInfo", h, "bus_id"))

    def nvmlDeviceGetMemoryInfo(self, h: int) -> SimpleNamespace:
        g = self.gpus[h]
        self._check("nvmlDeviceGetMemoryInfo", h)
        return SimpleNamespace(total=g["total"], used=g["used"], free=g["total"] - g["used"])

    def nvmlDeviceGetUtilizationRates(self, h: int) -> SimpleNamespace:
        self._check("nvmlDeviceGetUtilizationRates", h)
        return SimpleNamespace(gpu=self.gpus[h]["util"], memory=self.gpus[h]["mem_util"])

    def nvmlDeviceGetTemperature(self, h: int, sensor: int) -> int:
        assert sensor == self.NVML_TEMPERATURE_GPU
        return self._get("nvmlDeviceGetTemperature", h, "temp")

    def nvmlDeviceGetPowerUsage(self, h: int) -> int:
        return self._get("nvmlDeviceGetPowerUsage", h, "power_mw")

    def nvmlDeviceGetEnforcedPowerLimit(self, h: int) -> int:
        return self._get("nvmlDeviceGetEnforcedPowerLimit", h, "limit_mw")

    def nvmlDeviceGetClockInfo(self, h: int, clock: int) -> int:
        return self._get("nvmlDeviceGetClockInfo", h, "sm_mhz" if clock == self.NVML_CLOCK_SM else "mem_mhz")

    def nvmlDeviceGetFanSpeed(self, h: int) -> int:
        return self._get("nvmlDeviceGetFanSpeed", h, "fan")


def h100(**overrides: Any) -> dict[str, Any]:
    gpu = {
        "name": b"NVIDIA H100 80GB HBM3",
        "uuid": "GPU-1234",
        "bus_id": b"00000000:18:00.0",
        "total": 80 * GiB,
        "used": 10 * GiB,
        "util": 55,
        "mem_util": 20,
        "temp": 61,
        "power_mw": 250_123,
        "limit_mw": 700_000,
        "sm_mhz": 1980,
        "mem_mhz": 2619,
        "fan": 40,
    }
    return gpu | overrides


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakePynvml:
    fake = FakePynvml([h100(), h100(name="NVIDIA A10", uuid=b"GPU-5678", fan=0)])
    monkeypatch.setattr(nvml_module, "pynvml", fake)
    return fake


def test_it_maps_and_converts_every_field(fake: FakePynvml) -> None:
    gpu = Nvml.open().sample()[0]
    assert gpu.index == 0
    assert gpu.name == "NVIDIA H100 80GB HBM3"
    assert gpu.uuid == "GPU-1234"
    assert gpu.utilization_gpu_percent == 55
    assert gpu.utilization_memory_percent == 20
    assert gpu.memory_total_bytes == 80 * GiB
    assert gpu.memory_used_bytes == 10 * GiB
    assert gpu.memory_free_bytes == 70 * GiB
    assert gpu.temperature_c == 61
    assert gpu.power_draw_w == pytest.approx(250.123)
    assert gpu.power_limit_w == pytest.approx(700.0)
    assert (gpu.sm_clock_mhz, gpu.mem_clock_mhz) == (1980, 2619)
    assert gpu.fan_percent == 40


def test_names_come_back_as_str_whether_pynvml_gives_bytes_or_str(fake: FakePynvml) -> None:
    gpus = Nvml.open().sample()
    assert [g.name for g in gpus] == ["NVIDIA H100 80GB HBM3", "NVIDIA A10"]
    assert [g.uuid for g in gpus] == ["GPU-1234", "GPU-5678"]


def test_unsupported_fields_become_none_and_the_rest_carry_on(fake: FakePynvml) -> None:
    not_supported = FakePynvml.NVML_ERROR_NOT_SUPPORTED
    fake.failures[("nvmlDeviceGetFanSpeed", 0)] = not_supported
    fake.failures[("nvmlDeviceGetPowerUsage", 0)] = not_supported
    gpu0, gpu1 = Nvml.open().sample()
    assert gpu0.fan_percent is None
    assert gpu0.power_draw_w is None
    assert gpu0.power_limit_w == pytest.approx(700.0)
    assert gpu0.temperature_c == 61
    assert gpu0.memory_used_bytes == 10 * GiB
    assert gpu1.power_draw_w == pytest.approx(250.123)
    assert gpu1.fan_percent == 0


def test_a_lost_gpu_reads_as_none_without_raising(fake: FakePynvml) -> None:
    nvml = Nvml.open()
    lost = FakePynvml.NVML_ERROR_GPU_IS_LOST
    for fn in ["MemoryInfo", "UtilizationRates", "Temperature", "PowerUsage", "EnforcedPowerLimit"]:
        fake.failures[(f"nvmlDeviceGet{fn}", 1)] = lost
    for fn in ["ClockInfo", "FanSpeed"]:
        fake.failures[(f"nvmlDeviceGet{fn}", 1)] = lost
    gpu0, gpu1 = nvml.sample()
    assert gpu0.temperature_c == 61
    measured = {k: v for k, v in gpu1.to_json().items() if k not in ("index", "name", "uuid")}
    assert set(measured.values()) == {None}


def test_a_gpu_without_a_handle_keeps_its_index(fake: FakePynvml) -> None:
    fake.failures[("nvmlDeviceGetHandleByIndex", 0)] = FakePynvml.NVML_ERROR_GPU_IS_LOST
    gpu0, gpu1 = Nvml.open().sample()
    assert (gpu0.index, gpu0.memory_total_bytes) == (0, None)
    assert (gpu1.index, gpu1.name) == (1, "NVIDIA A10")


def test_a_function_missing_from_old_bindings_reads_as_none(
    fake: FakePynvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(FakePynvml, "nvmlDeviceGetFanSpeed")
    assert Nvml.open().sample()[0].fan_percent is None


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (FakePynvml.NVML_ERROR_LIBRARY_NOT_FOUND, "NVML library not found"),
        (FakePynvml.NVML_ERROR_DRIVER_NOT_LOADED, "no driver"),
        (FakePynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH, "driver/library version mismatch"),
        (FakePynvml.NVML_ERROR_GPU_IS_LOST, "GPU lost"),
        (FakePynvml.NVML_ERROR_NO_PERMISSION, "no permission to use NVML"),
    ],
)
def test_init_failures_name_the_reason(monkeypatch: pytest.MonkeyPatch, code: int, reason: str) -> None:
    monkeypatch.setattr(nvml_module, "pynvml", FakePynvml([], init_error=code))
    with pytest.raises(NvmlUnavailable) as info:
        Nvml.open()
    assert info.value.reason == reason
    assert str(info.value) == reason


def test_an_unexpected_init_failure_still_says_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nvml_module, "pynvml", FakePynvml([], init_error=FakePynvml.NVML_ERROR_UNKNOWN))
    with pytest.raises(NvmlUnavailable, match="NVML error"):
        Nvml.open()


def test_missing_bindings_mean_library_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nvml_module, "pynvml", None)
    with pytest.raises(NvmlUnavailable, match="NVML library not found"):
        Nvml.open()


def test_versions_are_decoded(fake: FakePynvml) -> None:
    nvml = Nvml.open()
    assert nvml.driver_version() == "550.54.15"
    assert nvml.cuda_driver_version() == "12.4"
    assert nvml.device_count() == 2


def test_static_info(fake: FakePynvml) -> None:
    info = Nvml.open().static_info()
    assert info[0] == {
        "index": 0,
        "name": "NVIDIA H100 80GB HBM3",
        "uuid": "GPU-1234",
        "memory_total_bytes": 80 * GiB,
        "pci_bus_id": "00000000:18:00.0",
    }
    assert info[1]["name"] == "NVIDIA A10"


def test_close_shuts_nvml_down_once(fake: FakePynvml) -> None:
    nvml = Nvml.open()
    nvml.close()
    nvml.close()
    assert fake.shutdowns == 1


def test_fake_constants_match_the_real_bindings() -> None:
    real = pytest.importorskip("pynvml")
    for name in dir(FakePynvml):
        if name.startswith("NVML_"):
            assert getattr(FakePynvml, name) == getattr(real, name), name
