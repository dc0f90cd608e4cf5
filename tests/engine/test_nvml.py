"""The real Nvml adapter against the fake pynvml of workers.sampler.fake_nvml.

The fake answers from one dict per GPU; a key missing from the dict makes the matching query
raise NVML_ERROR_NOT_SUPPORTED, as a GPU without that sensor does.
"""

from __future__ import annotations

from typing import Any

import pytest

from workers.sampler import nvml as nvml_module
from workers.sampler.fake_nvml import (
    UINT_NA,
    ULL_NA,
    FakePynvml,
    GiB,
    a10_without_extras,
    h100,
)
from workers.sampler.nvml import Nvml, NvmlUnavailable
from workers.sampler.nvml_values import throttle_reasons


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakePynvml:
    fake = FakePynvml([h100(), a10_without_extras()])
    monkeypatch.setattr(nvml_module, "pynvml", fake)
    return fake


def test_it_maps_and_converts_every_field(fake: FakePynvml) -> None:
    gpu = Nvml.open().sample()[0]
    assert gpu.index == 0
    assert gpu.name == "NVIDIA H100 80GB HBM3"
    assert gpu.uuid == "GPU-1234"
    assert gpu.pci_bus_id == "00000000:18:00.0"
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
    # NVML gives PCIe throughput in KB/s (KiB/s).
    assert (gpu.pcie_tx_bytes_per_s, gpu.pcie_rx_bytes_per_s) == (2_000 * 1024, 500_000 * 1024)
    assert gpu.throttle_reasons == ("sw_power_cap",)
    assert (gpu.ecc_errors_corrected, gpu.ecc_errors_uncorrected) == (3, 0)
    assert gpu.persistence_mode is True
    assert gpu.mig_mode is False
    assert (gpu.is_mig_device, gpu.parent_index) == (False, None)
    assert gpu.processes == ()


def test_a_gpu_lacking_fan_power_ecc_and_pcie_gives_none_there_and_all_else(fake: FakePynvml) -> None:
    gpu = Nvml.open().sample()[1]
    lacking = [
        "fan_percent",
        "power_draw_w",
        "power_limit_w",
        "ecc_errors_corrected",
        "ecc_errors_uncorrected",
        "pcie_tx_bytes_per_s",
        "pcie_rx_bytes_per_s",
    ]
    data = gpu.to_json()
    assert {k: data[k] for k in lacking} == dict.fromkeys(lacking)
    present = {k: v for k, v in data.items() if k not in lacking and k != "parent_index"}
    assert None not in present.values(), present
    assert (gpu.name, gpu.uuid, gpu.temperature_c, gpu.sm_clock_mhz) == ("NVIDIA A10", "GPU-5678", 61, 1980)


def test_ecc_switched_off_gives_no_error_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakePynvml([h100(ecc_mode=[0, 0])])
    monkeypatch.setattr(nvml_module, "pynvml", fake)
    gpu = Nvml.open().sample()[0]
    assert (gpu.ecc_errors_corrected, gpu.ecc_errors_uncorrected) == (None, None)
    assert fake.calls["nvmlDeviceGetTotalEccErrors"] == 0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"temp": UINT_NA}, "temperature_c"),
        ({"fan": UINT_NA}, "fan_percent"),
        ({"util": UINT_NA, "mem_util": 20}, "utilization_gpu_percent"),
        ({"power_mw": UINT_NA}, "power_draw_w"),
        ({"sm_mhz": UINT_NA}, "sm_clock_mhz"),
        ({"pcie_rx_kbps": UINT_NA}, "pcie_rx_bytes_per_s"),
        ({"ecc": [ULL_NA, 0]}, "ecc_errors_corrected"),
        ({"ecc": [0, 2**63 - 1]}, "ecc_errors_uncorrected"),
        ({"used": ULL_NA, "free": ULL_NA}, "memory_used_bytes"),
        ({"throttle": ULL_NA}, "throttle_reasons"),
    ],
)
def test_not_available_sentinels_become_none(
    monkeypatch: pytest.MonkeyPatch, overrides: dict[str, Any], field: str
) -> None:
    monkeypatch.setattr(nvml_module, "pynvml", FakePynvml([h100(**overrides)]))
    data = Nvml.open().sample()[0].to_json()
    assert data[field] is None
    assert data["mem_clock_mhz"] == 2619


def test_a_process_without_a_memory_reading_has_none_not_a_sentinel(monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = h100(procs=[{"pid": 4242, "used": ULL_NA}])
    monkeypatch.setattr(nvml_module, "pynvml", FakePynvml([gpu]))
    (proc,) = Nvml.open().sample()[0].processes or ()
    assert (proc.pid, proc.used_memory_bytes) == (4242, None)


@pytest.mark.parametrize(
    ("mask", "names"),
    [
        (0, ()),
        (0x1, ("gpu_idle",)),
        (0x4 | 0x40, ("sw_power_cap", "hw_thermal_slowdown")),
        (0x8 | 0x80 | 0x20, ("hw_slowdown", "sw_thermal_slowdown", "hw_power_brake_slowdown")),
        (0x2 | 0x10 | 0x100, ("applications_clocks_setting", "sync_boost", "display_clock_setting")),
        (0x4 | 0x1000, ("sw_power_cap", "unknown_0x1000")),
        (None, None),
        (ULL_NA, None),
    ],
)
def test_throttle_masks_decode_to_names(mask: int | None, names: tuple[str, ...] | None) -> None:
    assert throttle_reasons(mask) == names


def test_throttle_reasons_fall_back_to_the_pre_535_function(
    fake: FakePynvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(FakePynvml, "nvmlDeviceGetCurrentClocksEventReasons")
    fake.gpus[0]["throttle"] = 0x40
    nvml = Nvml.open()
    assert nvml.sample()[0].throttle_reasons == ("hw_thermal_slowdown",)
    assert nvml.sample()[0].throttle_reasons == ("hw_thermal_slowdown",)


def test_per_process_rows_carry_memory_and_sm_percent(fake: FakePynvml) -> None:
    fake.gpus[0]["procs"] = [
        {"pid": 101, "used": 2 * GiB},
        {"pid": 102, "used": 1 * GiB},
        {"pid": 102, "used": 512, "kind": "graphics"},
        {"pid": 103, "used": 64, "kind": "graphics"},
    ]
    fake.gpus[0]["proc_util"] = [(101, 5_000, 10), (101, 6_000, 70), (102, 5_500, 20)]
    rows = {p.pid: p for p in Nvml.open().sample()[0].processes or ()}
    assert sorted(rows) == [101, 102, 103]
    assert rows[101].used_memory_bytes == 2 * GiB
    assert rows[102].used_memory_bytes == 1 * GiB  # one row per PID across compute and graphics
    assert rows[101].sm_percent == 70  # the newest sample
    assert rows[102].sm_percent == 20
    assert rows[103].sm_percent == 0  # NVML lists only processes that ran kernels


def test_process_utilization_is_asked_since_the_previous_call(fake: FakePynvml) -> None:
    fake.gpus[0]["procs"] = [{"pid": 101, "used": GiB}]
    fake.gpus[0]["proc_util"] = [(101, 5_000, 30)]
    nvml = Nvml.open()
    assert nvml.sample()[0].processes[0].sm_percent == 30  # type: ignore[index]
    # Nothing new since the sample at 5000 us: NVML answers NOT_FOUND, which means idle.
    assert nvml.sample()[0].processes[0].sm_percent == 0  # type: ignore[index]
    fake.gpus[0]["proc_util"].append((101, 9_000, 80))
    assert nvml.sample()[0].processes[0].sm_percent == 80  # type: ignore[index]
    assert [ts for h, ts in fake.process_util_calls if h == 0] == [0, 5_000, 5_000]
    nvml.sample()
    assert fake.process_util_calls[-1] == (0, 9_000)


def test_process_sm_percent_is_none_where_nvml_cannot_attribute_it(fake: FakePynvml) -> None:
    fake.gpus[1]["procs"] = [{"pid": 201, "used": GiB}]
    (row,) = Nvml.open().sample()[1].processes or ()
    assert (row.pid, row.used_memory_bytes, row.sm_percent) == (201, GiB, None)


def test_processes_are_none_when_nvml_cannot_list_them(fake: FakePynvml) -> None:
    del fake.gpus[1]["procs"]
    assert Nvml.open().sample()[1].processes is None


def test_mig_devices_are_listed_as_their_own_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    mig = [
        {"name": "NVIDIA A100 MIG 3g.20gb", "uuid": "MIG-aaa", "total": 20 * GiB, "used": 5 * GiB,
         "procs": [{"pid": 301, "used": 4 * GiB}]},
        {"name": "NVIDIA A100 MIG 3g.20gb", "uuid": "MIG-bbb", "total": 20 * GiB, "used": 0, "procs": []},
    ]  # fmt: skip
    parent = h100(name="NVIDIA A100-SXM4-40GB", mig_mode=[1, 1], mig=mig)
    del parent["util"]  # NVML gives no whole-GPU utilization in MIG mode
    monkeypatch.setattr(nvml_module, "pynvml", FakePynvml([parent, h100(uuid="GPU-other")]))
    nvml = Nvml.open()
    gpus = nvml.sample()
    assert [(g.index, g.is_mig_device, g.parent_index) for g in gpus] == [
        (0, False, None),
        (1, False, None),
        (100, True, 0),
        (101, True, 0),
    ]
    first = gpus[2]
    assert (first.uuid, first.memory_used_bytes, first.memory_total_bytes) == ("MIG-aaa", 5 * GiB, 20 * GiB)
    assert [(p.pid, p.used_memory_bytes, p.sm_percent) for p in first.processes or ()] == [
        (301, 4 * GiB, None)
    ]
    assert first.temperature_c is None and first.utilization_gpu_percent is None
    assert gpus[0].mig_mode is True and gpus[0].utilization_gpu_percent is None
    assert gpus[0].temperature_c == 61
    assert nvml.device_count() == 2
    assert [g["index"] for g in nvml.static_info()] == [0, 1]


def test_persistence_mode_off_gives_a_warning(fake: FakePynvml) -> None:
    nvml = Nvml.open()
    gpus = nvml.sample()
    assert [g.persistence_mode for g in gpus] == [True, False]
    assert nvml.warnings == (
        "GPU 1: persistence mode is off; the first CUDA call after idle pays driver start-up",
    )


def test_static_fields_are_read_once_per_cache_window(fake: FakePynvml) -> None:
    clock = FakeClock()
    nvml = Nvml.open(clock=clock, static_ttl_s=5.0)
    static = [
        "nvmlDeviceGetName",
        "nvmlDeviceGetUUID",
        "nvmlDeviceGetPciInfo",
        "nvmlDeviceGetEnforcedPowerLimit",
        "nvmlDeviceGetPersistenceMode",
        "nvmlDeviceGetEccMode",
        "nvmlDeviceGetMigMode",
    ]
    after_open = {fn: fake.calls[fn] for fn in static}
    assert all(after_open.values())
    for _ in range(4):
        clock.now_s += 1.0
        nvml.sample()
    assert {fn: fake.calls[fn] for fn in static} == after_open
    assert fake.calls["nvmlDeviceGetUtilizationRates"] == 2 * 4  # dynamic fields: every tick
    # A query the GPU refused is not asked again until the next refresh.
    assert fake.calls["nvmlDeviceGetFanSpeed"] == 4 + 1

    clock.now_s += 1.5
    nvml.sample()
    assert {fn: fake.calls[fn] for fn in static} == {fn: 2 * n for fn, n in after_open.items()}
    assert fake.calls["nvmlDeviceGetFanSpeed"] == 4 + 1 + 2


def test_a_changed_static_field_shows_after_the_cache_window(fake: FakePynvml) -> None:
    clock = FakeClock()
    nvml = Nvml.open(clock=clock, static_ttl_s=5.0)
    fake.gpus[1]["persistence"] = 1
    nvml.sample()
    assert len(nvml.warnings) == 1
    clock.now_s += 5.0
    assert nvml.sample()[1].persistence_mode is True
    assert nvml.warnings == ()


def test_names_come_back_as_str_whether_pynvml_gives_bytes_or_str(fake: FakePynvml) -> None:
    gpus = Nvml.open().sample()
    assert [g.name for g in gpus] == ["NVIDIA H100 80GB HBM3", "NVIDIA A10"]
    assert [g.uuid for g in gpus] == ["GPU-1234", "GPU-5678"]


def test_unsupported_fields_become_none_and_the_rest_carry_on(fake: FakePynvml) -> None:
    not_supported = FakePynvml.NVML_ERROR_NOT_SUPPORTED
    fake.failures[("nvmlDeviceGetTemperature", 0)] = not_supported
    fake.failures[("nvmlDeviceGetClockInfo", 0)] = not_supported
    gpu0, gpu1 = Nvml.open().sample()
    assert (gpu0.temperature_c, gpu0.sm_clock_mhz, gpu0.mem_clock_mhz) == (None, None, None)
    assert gpu0.power_limit_w == pytest.approx(700.0)
    assert gpu0.fan_percent == 40
    assert gpu0.memory_used_bytes == 10 * GiB
    assert (gpu1.temperature_c, gpu1.sm_clock_mhz) == (61, 1980)


def test_a_lost_gpu_reads_as_none_and_is_named_in_the_warnings(fake: FakePynvml) -> None:
    nvml = Nvml.open()
    lost = FakePynvml.NVML_ERROR_GPU_IS_LOST
    for fn in ["MemoryInfo", "UtilizationRates", "Temperature", "PowerUsage", "ClockInfo", "FanSpeed"]:
        fake.failures[(f"nvmlDeviceGet{fn}", 0)] = lost
    for fn in ["PcieThroughput", "CurrentClocksEventReasons", "TotalEccErrors", "ComputeRunningProcesses"]:
        fake.failures[(f"nvmlDeviceGet{fn}", 0)] = lost
    fake.failures[("nvmlDeviceGetGraphicsRunningProcesses", 0)] = lost
    gpu0, gpu1 = nvml.sample()
    assert gpu1.temperature_c == 61
    readings = {k: v for k, v in gpu0.to_json().items() if k.endswith(("_percent", "_c", "_mhz", "_per_s"))}
    assert set(readings.values()) == {None}
    assert gpu0.memory_used_bytes is None and gpu0.power_draw_w is None and gpu0.processes is None
    assert nvml.warnings[0].startswith("GPU 0: GPU is lost")


def test_a_gpu_without_a_handle_keeps_its_index(fake: FakePynvml) -> None:
    fake.failures[("nvmlDeviceGetHandleByIndex", 0)] = FakePynvml.NVML_ERROR_GPU_IS_LOST
    nvml = Nvml.open()
    gpu0, gpu1 = nvml.sample()
    assert (gpu0.index, gpu0.memory_total_bytes, gpu0.name) == (0, None, None)
    assert (gpu1.index, gpu1.name) == (1, "NVIDIA A10")
    assert nvml.warnings[0].startswith("GPU 0: NVML cannot reach this GPU")


def test_a_function_missing_from_old_bindings_reads_as_none(
    fake: FakePynvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(FakePynvml, "nvmlDeviceGetFanSpeed")
    monkeypatch.delattr(FakePynvml, "nvmlDeviceGetProcessUtilization")
    fake.gpus[0]["procs"] = [{"pid": 101, "used": GiB}]
    gpu = Nvml.open().sample()[0]
    assert gpu.fan_percent is None
    assert gpu.processes[0].sm_percent is None  # type: ignore[index]
    assert gpu.temperature_c == 61


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
        "compute_capability": "9.0",
    }
    assert (info[1]["name"], info[1]["compute_capability"]) == ("NVIDIA A10", "8.6")


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
    assert real.NVML_VALUE_NOT_AVAILABLE_uint.value == UINT_NA
    assert real.NVML_VALUE_NOT_AVAILABLE_ulonglong.value == ULL_NA
    for name in ["nvmlClocksEventReasonSwPowerCap", "nvmlClocksEventReasonHwThermalSlowdown"]:
        assert hasattr(real, name)
    assert real.nvmlClocksEventReasonSwPowerCap == 0x4
    assert real.nvmlClocksEventReasonHwThermalSlowdown == 0x40


def test_pcie_throughput_is_read_at_most_once_a_second(fake: FakePynvml) -> None:
    # NVML measures PCIe over 20 ms inside each call: a 10 Hz sampler must not pay that every tick.
    clock = FakeClock()
    nvml = Nvml.open(clock=clock, pcie_every_s=1.0)
    readings = []
    for _ in range(8):
        readings.append(nvml.sample()[0].pcie_rx_bytes_per_s)
        fake.gpus[0]["pcie_rx_kbps"] += 1
        clock.now_s += 0.125
    # tx and rx of GPU 0 once; GPU 1 refused each once and is not asked again.
    assert fake.calls["nvmlDeviceGetPcieThroughput"] == 2 + 2
    assert set(readings) == {500_000 * 1024}
    assert nvml.sample()[0].pcie_rx_bytes_per_s == 500_008 * 1024
