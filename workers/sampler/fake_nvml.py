"""A fake pynvml that behaves like nvidia-ml-py, for tests and for simulated GPUs.

``FakePynvml`` answers from one dict per GPU; a key missing from the dict makes the matching
query raise NVML_ERROR_NOT_SUPPORTED, as a GPU without that sensor does. ``SimulatedPynvml`` is
the same fake with values that move over time, which ``perfmon up --demo-gpus N`` samples so the
GPU pages can be seen on a machine without a GPU. Either replaces the bindings the real
``workers.sampler.nvml`` adapter calls, so everything past the bindings runs for real.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

GiB = 1024**3
UINT_NA = 0xFFFFFFFF  # pynvml.NVML_VALUE_NOT_AVAILABLE_uint
ULL_NA = 0xFFFFFFFFFFFFFFFF  # pynvml.NVML_VALUE_NOT_AVAILABLE_ulonglong


class FakeNVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value


class FakePynvml:
    """The slice of pynvml that Nvml uses; error codes and enums copied from pynvml.

    Physical handles are GPU indices; MIG handles are ("mig", parent index, position).
    ``calls`` counts every device query by function name.
    """

    NVMLError = FakeNVMLError
    NVML_ERROR_UNINITIALIZED = 1
    NVML_ERROR_NOT_SUPPORTED = 3
    NVML_ERROR_NO_PERMISSION = 4
    NVML_ERROR_NOT_FOUND = 6
    NVML_ERROR_DRIVER_NOT_LOADED = 9
    NVML_ERROR_LIBRARY_NOT_FOUND = 12
    NVML_ERROR_FUNCTION_NOT_FOUND = 13
    NVML_ERROR_GPU_IS_LOST = 15
    NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18
    NVML_ERROR_UNKNOWN = 999
    NVML_TEMPERATURE_GPU = 0
    NVML_CLOCK_SM = 1
    NVML_CLOCK_MEM = 2
    NVML_FEATURE_DISABLED = 0
    NVML_FEATURE_ENABLED = 1
    NVML_PCIE_UTIL_TX_BYTES = 0
    NVML_PCIE_UTIL_RX_BYTES = 1
    NVML_VOLATILE_ECC = 0
    NVML_MEMORY_ERROR_TYPE_CORRECTED = 0
    NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1
    NVML_DEVICE_MIG_DISABLE = 0
    NVML_DEVICE_MIG_ENABLE = 1

    def __init__(self, gpus: list[dict[str, Any]], *, init_error: int | None = None) -> None:
        self.gpus = gpus
        self.init_error = init_error
        # (function name, gpu index or None) -> error code raised instead of answering
        self.failures: dict[tuple[str, int | None], int] = {}
        self.shutdowns = 0
        self.calls: Counter[str] = Counter()
        # (handle, lastSeenTimeStamp) of every nvmlDeviceGetProcessUtilization call
        self.process_util_calls: list[tuple[Any, int]] = []

    def _gpu(self, h: Any) -> dict[str, Any]:
        if isinstance(h, tuple):
            return self.gpus[h[1]]["mig"][h[2]]
        return self.gpus[h]

    def _get(self, fn: str, h: Any, key: str) -> Any:
        self.calls[fn] += 1
        index = h if isinstance(h, int) else None
        code = self.failures.get((fn, index), self.failures.get((fn, None)))
        if code is not None:
            raise FakeNVMLError(code)
        gpu = self._gpu(h)
        if key not in gpu:
            raise FakeNVMLError(self.NVML_ERROR_NOT_SUPPORTED)
        return gpu[key]

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise FakeNVMLError(self.init_error)

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        self._get("nvmlDeviceGetHandleByIndex", i, "name")
        return i

    def nvmlSystemGetDriverVersion(self) -> bytes:
        return b"550.54.15"

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return 12040

    def nvmlDeviceGetName(self, h: Any) -> str | bytes:
        return self._get("nvmlDeviceGetName", h, "name")

    def nvmlDeviceGetUUID(self, h: Any) -> str | bytes:
        return self._get("nvmlDeviceGetUUID", h, "uuid")

    def nvmlDeviceGetPciInfo(self, h: Any) -> SimpleNamespace:
        return SimpleNamespace(busId=self._get("nvmlDeviceGetPciInfo", h, "bus_id"))

    def nvmlDeviceGetCudaComputeCapability(self, h: Any) -> tuple[int, int]:
        return tuple(self._get("nvmlDeviceGetCudaComputeCapability", h, "compute_capability"))

    def nvmlDeviceGetMemoryInfo(self, h: Any) -> SimpleNamespace:
        total = self._get("nvmlDeviceGetMemoryInfo", h, "total")
        used = self._gpu(h)["used"]
        return SimpleNamespace(total=total, used=used, free=self._gpu(h).get("free", total - used))

    def nvmlDeviceGetUtilizationRates(self, h: Any) -> SimpleNamespace:
        util = self._get("nvmlDeviceGetUtilizationRates", h, "util")
        return SimpleNamespace(gpu=util, memory=self._gpu(h)["mem_util"])

    def nvmlDeviceGetTemperature(self, h: Any, sensor: int) -> int:
        assert sensor == self.NVML_TEMPERATURE_GPU
        return self._get("nvmlDeviceGetTemperature", h, "temp")

    def nvmlDeviceGetPowerUsage(self, h: Any) -> int:
        return self._get("nvmlDeviceGetPowerUsage", h, "power_mw")

    def nvmlDeviceGetEnforcedPowerLimit(self, h: Any) -> int:
        return self._get("nvmlDeviceGetEnforcedPowerLimit", h, "limit_mw")

    def nvmlDeviceGetClockInfo(self, h: Any, clock: int) -> int:
        return self._get("nvmlDeviceGetClockInfo", h, "sm_mhz" if clock == self.NVML_CLOCK_SM else "mem_mhz")

    def nvmlDeviceGetFanSpeed(self, h: Any) -> int:
        return self._get("nvmlDeviceGetFanSpeed", h, "fan")

    def nvmlDeviceGetPcieThroughput(self, h: Any, counter: int) -> int:
        key = "pcie_tx_kbps" if counter == self.NVML_PCIE_UTIL_TX_BYTES else "pcie_rx_kbps"
        return self._get("nvmlDeviceGetPcieThroughput", h, key)

    def nvmlDeviceGetCurrentClocksEventReasons(self, h: Any) -> int:
        return self._get("nvmlDeviceGetCurrentClocksEventReasons", h, "throttle")

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, h: Any) -> int:
        return self._get("nvmlDeviceGetCurrentClocksThrottleReasons", h, "throttle")

    def nvmlDeviceGetPersistenceMode(self, h: Any) -> int:
        return self._get("nvmlDeviceGetPersistenceMode", h, "persistence")

    def nvmlDeviceGetEccMode(self, h: Any) -> list[int]:
        return self._get("nvmlDeviceGetEccMode", h, "ecc_mode")

    def nvmlDeviceGetTotalEccErrors(self, h: Any, error_type: int, counter_type: int) -> int:
        assert counter_type == self.NVML_VOLATILE_ECC
        return self._get("nvmlDeviceGetTotalEccErrors", h, "ecc")[error_type]

    def nvmlDeviceGetMigMode(self, h: Any) -> list[int]:
        return self._get("nvmlDeviceGetMigMode", h, "mig_mode")

    def nvmlDeviceGetMaxMigDeviceCount(self, h: Any) -> int:
        self._get("nvmlDeviceGetMaxMigDeviceCount", h, "mig")
        return 7

    def nvmlDeviceGetMigDeviceHandleByIndex(self, h: int, position: int) -> tuple[str, int, int]:
        if position >= len(self._get("nvmlDeviceGetMigDeviceHandleByIndex", h, "mig")):
            raise FakeNVMLError(self.NVML_ERROR_NOT_FOUND)
        return ("mig", h, position)

    def _procs(self, fn: str, h: Any, kind: str) -> list[SimpleNamespace]:
        procs = self._get(fn, h, "procs")
        return [
            SimpleNamespace(
                pid=p["pid"], usedGpuMemory=p["used"], gpuInstanceId=UINT_NA, computeInstanceId=UINT_NA
            )
            for p in procs
            if p.get("kind", "compute") == kind
        ]

    def nvmlDeviceGetComputeRunningProcesses(self, h: Any) -> list[SimpleNamespace]:
        return self._procs("nvmlDeviceGetComputeRunningProcesses", h, "compute")

    def nvmlDeviceGetGraphicsRunningProcesses(self, h: Any) -> list[SimpleNamespace]:
        return self._procs("nvmlDeviceGetGraphicsRunningProcesses", h, "graphics")

    def nvmlDeviceGetProcessUtilization(self, h: Any, last_seen_us: int) -> list[SimpleNamespace]:
        self.process_util_calls.append((h, last_seen_us))
        samples = self._get("nvmlDeviceGetProcessUtilization", h, "proc_util")
        newer = [
            SimpleNamespace(pid=pid, timeStamp=ts, smUtil=sm, memUtil=0, encUtil=0, decUtil=0)
            for pid, ts, sm in samples
            if ts > last_seen_us
        ]
        if not newer:
            raise FakeNVMLError(self.NVML_ERROR_NOT_FOUND)
        return newer


def h100(**overrides: Any) -> dict[str, Any]:
    """A full-featured GPU: every query answers."""
    gpu = {
        "name": b"NVIDIA H100 80GB HBM3",
        "uuid": "GPU-1234",
        "bus_id": b"00000000:18:00.0",
        "total": 80 * GiB,
        "compute_capability": (9, 0),
        "used": 10 * GiB,
        "util": 55,
        "mem_util": 20,
        "temp": 61,
        "power_mw": 250_123,
        "limit_mw": 700_000,
        "sm_mhz": 1980,
        "mem_mhz": 2619,
        "fan": 40,
        "pcie_tx_kbps": 2_000,
        "pcie_rx_kbps": 500_000,
        "throttle": 0x4,
        "persistence": 1,
        "ecc_mode": [1, 1],
        "ecc": [3, 0],
        "mig_mode": [0, 0],
        "procs": [],
        "proc_util": [],
    }
    return gpu | overrides


def a10_without_extras(**overrides: Any) -> dict[str, Any]:
    """A GPU without fan, power, ECC or PCIe readings, persistence off and no process SM %."""
    gpu = h100(
        name="NVIDIA A10",
        uuid=b"GPU-5678",
        bus_id="00000000:3B:00.0",
        persistence=0,
        compute_capability=(8, 6),
        **overrides,
    )
    for key in (
        "fan",
        "power_mw",
        "limit_mw",
        "ecc_mode",
        "ecc",
        "pcie_tx_kbps",
        "pcie_rx_kbps",
        "proc_util",
    ):
        gpu.pop(key, None)
    return gpu


SIMULATED_GPU_NAME = "Simulated H100 80GB"


class SimulatedPynvml(FakePynvml):
    """``count`` GPUs like an H100 80GB under a load that rises and falls over a minute or so.

    Each GPU has its own phase and noise, so tiles and charts move independently; power and
    temperature follow utilization as on a real card. ``clock`` is wall-clock seconds, so the
    values change between samples whatever process reads them. ``SIMULATED`` tells the adapter
    (and through it the node's info) that no real GPU is behind these readings.
    """

    SIMULATED = True

    def __init__(self, count: int, *, clock: Callable[[], float] = time.time, seed: int = 0) -> None:
        if not 1 <= count <= 16:
            raise ValueError(f"simulate 1 to 16 GPUs, not {count}")
        gpus = []
        for i in range(count):
            gpu = h100(
                name=SIMULATED_GPU_NAME,
                uuid=f"GPU-5e1a7ed0-0000-4000-8000-{i:012x}",
                bus_id=f"00000000:{0x18 + 0x10 * i:02X}:00.0",
                throttle=0,
                ecc=[0, 0],
            )
            del gpu["fan"]  # SXM cards have no fan of their own: the fan field reads N/A, as on one
            gpus.append(gpu)
        super().__init__(gpus)
        self._clock = clock
        self._random = [random.Random(seed * 100 + i) for i in range(count)]
        self._phase = [self._random[i].uniform(0, 2 * math.pi) for i in range(count)]
        self._moved_at = [float("-inf")] * count

    def nvmlSystemGetDriverVersion(self) -> bytes:
        return b"simulated"

    def _gpu(self, h: Any) -> dict[str, Any]:
        if isinstance(h, int):
            self._move(h)
        return super()._gpu(h)

    def _move(self, index: int) -> None:
        """New readings at most every 50 ms: one sample reads a GPU a dozen times and should see one state."""
        now = self._clock()
        if now - self._moved_at[index] < 0.05:
            return
        self._moved_at[index] = now
        gpu, noise, phase = self.gpus[index], self._random[index], self._phase[index]
        load = 0.5 + 0.4 * math.sin(2 * math.pi * now / 60 + phase) + noise.uniform(-0.08, 0.08)
        util = round(min(100.0, max(0.0, 100 * load)))
        gpu["util"] = util
        gpu["mem_util"] = round(util * 0.6)
        memory_share = 0.1 + 0.6 * (0.5 + 0.5 * math.sin(2 * math.pi * now / 300 + phase))
        gpu["used"] = int(gpu["total"] * memory_share) // (1024**2) * 1024**2
        gpu["power_mw"] = int((70 + 5.8 * util + noise.uniform(-10, 10)) * 1000)
        gpu["temp"] = round(34 + 0.42 * util + noise.uniform(-1, 1))
        gpu["sm_mhz"] = 1980 if util > 5 else 345
        gpu["pcie_tx_kbps"] = int(util * 2_000 + noise.uniform(0, 500))
        gpu["pcie_rx_kbps"] = int(util * 50_000 + noise.uniform(0, 5_000))


def simulate_gpus(count: int) -> SimulatedPynvml:
    """Make this process's NVML adapter read ``count`` simulated GPUs instead of a driver.

    For a process that only ever simulates (the sampler under ``--demo-gpus``): the swap is for good."""
    from workers.sampler import nvml

    bindings = SimulatedPynvml(count)
    nvml.pynvml = bindings  # type: ignore[assignment]
    return bindings
