"""The one adapter around NVML (the library behind ``nvidia-smi``); nothing else calls pynvml.

Opening fails with one typed error, ``NvmlUnavailable``, carrying a human reason. Once open,
reading never raises: a metric a GPU does not support becomes ``None``, and a GPU that falls off
the bus shows up in ``warnings``. NVML is initialised once per session and queried in-process:
never ``nvidia-smi``, which costs 7 to 400 ms a call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from workers.sampler.nvml_values import enabled, number, scaled, text, throttle_reasons
from workers.sampler.sample import GpuProcess, GpuSample

try:
    import pynvml
except ImportError:  # nvidia-ml-py is not installed
    pynvml = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

# Keyed by constant name, not value, so the mapping follows whichever pynvml module is loaded.
_INIT_REASONS: dict[str, str] = {
    "NVML_ERROR_LIBRARY_NOT_FOUND": "NVML library not found",
    "NVML_ERROR_DRIVER_NOT_LOADED": "no driver",
    "NVML_ERROR_LIB_RM_VERSION_MISMATCH": "driver/library version mismatch",
    "NVML_ERROR_GPU_IS_LOST": "GPU lost",
    "NVML_ERROR_NO_PERMISSION": "no permission to use NVML",
    "NVML_ERROR_FUNCTION_NOT_FOUND": "NVML library lacks a needed function (driver too old)",
    "NVML_ERROR_OPERATING_SYSTEM": "the operating system blocked NVML",
    "NVML_ERROR_RESET_REQUIRED": "GPU needs a reset",
    "NVML_ERROR_INSUFFICIENT_POWER": "GPU lacks external power",
    "NVML_ERROR_TIMEOUT": "NVML timed out",
}

# Answers that will not change until the driver does: the query is skipped until the next
# static refresh instead of being asked (and refused) every tick.
_SKIP_UNTIL_REFRESH = (
    "NVML_ERROR_NOT_SUPPORTED",
    "NVML_ERROR_FUNCTION_NOT_FOUND",
    "NVML_ERROR_NO_PERMISSION",
)

# Real pynvml values, used when the loaded bindings lack a constant.
_KIB = 1024  # nvmlDeviceGetPcieThroughput answers in KB/s, which NVML means as KiB/s (as nvitop reads it)
_MIG_INDEX_BASE = 100  # MIG device index = 100 * (parent index + 1) + position on the parent

PERSISTENCE_OFF_WARNING = "persistence mode is off; the first CUDA call after idle pays driver start-up"


class NvmlUnavailable(Exception):
    """NVML cannot be used on this node; ``reason`` says why in words (e.g. "no driver")."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _reason(error: BaseException) -> str:
    code = getattr(error, "value", None)
    for const, reason in _INIT_REASONS.items():
        if code is not None and getattr(pynvml, const, object()) == code:
            return reason
    return f"NVML error: {error}"


def _query(fn_name: str, *args: Any, default: Any = None) -> Any:
    """``pynvml.<fn_name>(*args)``, or ``default`` when NVML cannot give it (system-level calls).

    The function is looked up by name so that bindings too old to have it also give ``default``.
    """
    try:
        return getattr(pynvml, fn_name)(*args)
    except (pynvml.NVMLError, AttributeError):
        return default


def _const(name: str, default: int) -> int:
    return int(getattr(pynvml, name, default))


@dataclass
class _Device:
    """One physical GPU or MIG device: its handle, cached static facts and per-query support."""

    index: int
    handle: Any
    parent_index: int | None = None
    name: str | None = None
    uuid: str | None = None
    pci_bus_id: str | None = None
    memory_total_bytes: int | None = None
    compute_capability: str | None = None  # "9.0"; which optimization passes the GPU can run
    power_limit_w: float | None = None
    persistence_mode: bool | None = None
    ecc_enabled: bool | None = None
    mig_mode: bool | None = None
    # (function name, extra args) NVML refused for good; cleared on each static refresh.
    unsupported: set[tuple[str, tuple[Any, ...]]] = field(default_factory=set)
    lost: bool = False
    # CPU timestamp (us) of the newest per-process utilization sample seen, for the next call.
    process_seen_us: int = 0
    # Latest PCIe (tx, rx) bytes/s and when they were read (clock seconds).
    pcie: tuple[float | None, float | None] = (None, None)
    pcie_read_at: float = float("-inf")

    @property
    def is_mig(self) -> bool:
        return self.parent_index is not None


class Nvml:
    """An open NVML session; use ``Nvml.open()``, then ``close()``.

    Static and slow fields (name, UUID, PCI bus id, memory total, power limit, persistence, ECC
    and MIG modes, the MIG device list) are read at most every ``static_ttl_s`` seconds of
    ``clock``. PCIe throughput is read at most every ``pcie_every_s``: NVML measures it over a
    20 ms window inside the call, so two calls block a tick for about 40 ms per GPU, which a
    10 Hz sampler of an 8-GPU node cannot afford every tick. Everything else is read on each
    ``sample()``.
    """

    def __init__(
        self,
        handles: list[Any],
        *,
        clock: Callable[[], float] = time.monotonic,
        static_ttl_s: float = 5.0,
        pcie_every_s: float = 1.0,
    ) -> None:
        self._handles = handles
        self._clock = clock
        self._static_ttl_s = static_ttl_s
        self._pcie_every_s = pcie_every_s
        self._closed = False
        self._skip_codes = frozenset(getattr(pynvml, c) for c in _SKIP_UNTIL_REFRESH if hasattr(pynvml, c))
        self._lost_code = getattr(pynvml, "NVML_ERROR_GPU_IS_LOST", 15)
        self._not_found_code = getattr(pynvml, "NVML_ERROR_NOT_FOUND", 6)
        self._devices: list[_Device] = []
        self._static_due = float("-inf")
        self._warnings: tuple[str, ...] = ()
        self._refresh_static()

    @classmethod
    def open(
        cls,
        *,
        clock: Callable[[], float] = time.monotonic,
        static_ttl_s: float = 5.0,
        pcie_every_s: float = 1.0,
    ) -> Nvml:
        """Initialise NVML and fetch every device handle; raises ``NvmlUnavailable`` with a reason."""
        if pynvml is None:
            raise NvmlUnavailable("NVML library not found (nvidia-ml-py is not installed)")
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as e:
            raise NvmlUnavailable(_reason(e)) from e
        try:
            count = pynvml.nvmlDeviceGetCount()
        except pynvml.NVMLError as e:
            _query("nvmlShutdown")
            raise NvmlUnavailable(_reason(e)) from e
        # A GPU whose handle cannot be had (lost, needs reset) stays in the list as all-None
        # readings, so indices keep matching nvidia-smi's.
        handles = [_query("nvmlDeviceGetHandleByIndex", i) for i in range(count)]
        return cls(handles, clock=clock, static_ttl_s=static_ttl_s, pcie_every_s=pcie_every_s)

    def close(self) -> None:
        """Shut NVML down (``nvmlShutdown``); safe to call twice."""
        if not self._closed:
            self._closed = True
            _query("nvmlShutdown")

    def __enter__(self) -> Nvml:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def simulated(self) -> bool:
        """True when the bindings are fake_nvml's simulated GPUs (``perfmon up --demo-gpus``), not a driver."""
        return bool(getattr(pynvml, "SIMULATED", False))

    def device_count(self) -> int:
        """Number of physical GPUs (``nvidia-smi --query-gpu=count``); MIG devices not counted."""
        return len(self._handles)

    def driver_version(self) -> str | None:
        """Kernel driver version such as "550.54.15" (``--query-gpu=driver_version``)."""
        return text(_query("nvmlSystemGetDriverVersion"))

    def cuda_driver_version(self) -> str | None:
        """Newest CUDA the driver supports, e.g. "12.4" (the "CUDA Version" in ``nvidia-smi``'s header)."""
        version = _query("nvmlSystemGetCudaDriverVersion")
        if version is None:
            return None
        # NVML encodes 12.4 as 12040: major * 1000 + minor * 10.
        return f"{version // 1000}.{version % 1000 // 10}"

    @property
    def warnings(self) -> tuple[str, ...]:
        """What the latest ``sample()`` found a user should act on, e.g. "GPU 0: persistence mode is off; ..."."""
        return self._warnings

    def static_info(self) -> list[dict[str, Any]]:
        """Facts that do not change while the driver is loaded, per physical GPU:
        ``--query-gpu=index,name,uuid,memory.total,pci.bus_id,compute_cap``."""
        self._refresh_static_if_due()
        return [
            {
                "index": d.index,
                "name": d.name,
                "uuid": d.uuid,
                "memory_total_bytes": d.memory_total_bytes,
                "pci_bus_id": d.pci_bus_id,
                "compute_capability": d.compute_capability,
            }
            for d in self._devices
            if not d.is_mig
        ]

    def sample(self) -> tuple[GpuSample, ...]:
        """One reading per GPU, then per MIG device; never raises. Unsupported fields are ``None``."""
        for device in self._devices:
            device.lost = False
        self._refresh_static_if_due()
        samples = [self._sample_device(device) for device in self._devices]
        self._warnings = tuple(w for d in self._devices for w in self._device_warnings(d))
        return tuple(samples)

    # -- reading -------------------------------------------------------------------------------

    def _call(self, device: _Device, fn_name: str, *args: Any) -> Any:
        """``pynvml.<fn_name>(device.handle, *args)``, or None when NVML cannot give it.

        nvitop's ``nvmlQuery(..., default=NA)`` pattern: a fanless or passively capped card
        answers NOT_SUPPORTED for some fields, and that must blank one field, not the sample.
        """
        key = (fn_name, args)
        if device.handle is None or key in device.unsupported:
            return None
        fn = getattr(pynvml, fn_name, None)
        if fn is None:  # bindings too old to know the function
            device.unsupported.add(key)
            return None
        try:
            return fn(device.handle, *args)
        except pynvml.NVMLError as e:
            code = getattr(e, "value", None)
            if code in self._skip_codes:
                device.unsupported.add(key)
            elif code == self._lost_code:
                device.lost = True
            return None

    def _refresh_static_if_due(self) -> None:
        if self._clock() >= self._static_due:
            self._refresh_static()

    def _refresh_static(self) -> None:
        self._static_due = self._clock() + self._static_ttl_s
        # Devices are kept across refreshes so per-process timestamps carry over.
        old = {d.index: d for d in self._devices}
        physical: list[_Device] = []
        mig: list[_Device] = []
        for index, handle in enumerate(self._handles):
            device = old.get(index) or _Device(index, handle)
            self._read_static(device)
            physical.append(device)
            if device.mig_mode:
                mig.extend(self._mig_devices(device, old))
        self._devices = physical + mig

    def _read_static(self, device: _Device) -> None:
        device.unsupported.clear()  # a driver update or mode change may have made a query work
        device.name = text(self._call(device, "nvmlDeviceGetName")) or device.name
        device.uuid = text(self._call(device, "nvmlDeviceGetUUID")) or device.uuid
        if device.is_mig:
            return  # limits, modes and PCI belong to the parent GPU
        pci = self._call(device, "nvmlDeviceGetPciInfo")
        device.pci_bus_id = text(getattr(pci, "busId", None)) or device.pci_bus_id
        mem = self._call(device, "nvmlDeviceGetMemoryInfo")
        device.memory_total_bytes = number(getattr(mem, "total", None))
        device.compute_capability = _capability(self._call(device, "nvmlDeviceGetCudaComputeCapability"))
        device.power_limit_w = scaled(self._call(device, "nvmlDeviceGetEnforcedPowerLimit"), 1e-3)
        device.persistence_mode = enabled(self._call(device, "nvmlDeviceGetPersistenceMode"))
        device.ecc_enabled = enabled(self._call(device, "nvmlDeviceGetEccMode"))
        device.mig_mode = enabled(self._call(device, "nvmlDeviceGetMigMode"))

    def _mig_devices(self, parent: _Device, old: dict[int, _Device]) -> list[_Device]:
        out = []
        for position in range(number(self._call(parent, "nvmlDeviceGetMaxMigDeviceCount")) or 0):
            handle = self._call(parent, "nvmlDeviceGetMigDeviceHandleByIndex", position)
            if handle is None:  # NOT_FOUND: no MIG device at this position
                continue
            index = _MIG_INDEX_BASE * (parent.index + 1) + position
            device = old.get(index) or _Device(index, handle, parent_index=parent.index)
            device.handle = handle  # bindings hand out a new handle object per call
            self._read_static(device)
            out.append(device)
        return out

    def _sample_device(self, d: _Device) -> GpuSample:
        """Fields map to ``nvidia-smi --query-gpu=``: utilization.gpu, utilization.memory (%),
        memory.used/free/total (bytes), temperature.gpu (°C), power.draw and enforced.power.limit
        (W; NVML reports mW), clocks.sm and clocks.mem (MHz), fan.speed (%), clocks_event_reasons.*,
        ecc.errors.{corrected,uncorrected}.volatile.total, persistence_mode, mig.mode.current;
        PCIe tx/rx as ``nvidia-smi dmon -s t`` (bytes/s; NVML reports KB/s).
        """
        util = self._call(d, "nvmlDeviceGetUtilizationRates")
        mem = self._call(d, "nvmlDeviceGetMemoryInfo")
        common: dict[str, Any] = {
            "index": d.index,
            "uuid": d.uuid,
            "name": d.name,
            "utilization_gpu_percent": number(getattr(util, "gpu", None)),
            "utilization_memory_percent": number(getattr(util, "memory", None)),
            "memory_used_bytes": number(getattr(mem, "used", None)),
            "memory_free_bytes": number(getattr(mem, "free", None)),
            "memory_total_bytes": number(getattr(mem, "total", None)),
            "processes": self._processes(d) if d.handle is not None else None,
        }
        if d.is_mig:
            return GpuSample(
                **common,
                temperature_c=None,
                power_draw_w=None,
                power_limit_w=None,
                sm_clock_mhz=None,
                mem_clock_mhz=None,
                fan_percent=None,
                is_mig_device=True,
                parent_index=d.parent_index,
            )
        ecc_corrected = ecc_uncorrected = None
        if d.ecc_enabled:
            volatile = _const("NVML_VOLATILE_ECC", 0)
            ecc_corrected = number(
                self._call(
                    d, "nvmlDeviceGetTotalEccErrors", _const("NVML_MEMORY_ERROR_TYPE_CORRECTED", 0), volatile
                )
            )
            ecc_uncorrected = number(
                self._call(
                    d,
                    "nvmlDeviceGetTotalEccErrors",
                    _const("NVML_MEMORY_ERROR_TYPE_UNCORRECTED", 1),
                    volatile,
                )
            )
        return GpuSample(
            **common,
            temperature_c=number(
                self._call(d, "nvmlDeviceGetTemperature", _const("NVML_TEMPERATURE_GPU", 0))
            ),
            power_draw_w=scaled(self._call(d, "nvmlDeviceGetPowerUsage"), 1e-3),
            power_limit_w=d.power_limit_w,
            sm_clock_mhz=number(self._call(d, "nvmlDeviceGetClockInfo", _const("NVML_CLOCK_SM", 1))),
            mem_clock_mhz=number(self._call(d, "nvmlDeviceGetClockInfo", _const("NVML_CLOCK_MEM", 2))),
            fan_percent=number(self._call(d, "nvmlDeviceGetFanSpeed")),
            pci_bus_id=d.pci_bus_id,
            pcie_tx_bytes_per_s=self._pcie(d)[0],
            pcie_rx_bytes_per_s=d.pcie[1],
            throttle_reasons=throttle_reasons(self._throttle_mask(d)),
            ecc_errors_corrected=ecc_corrected,
            ecc_errors_uncorrected=ecc_uncorrected,
            persistence_mode=d.persistence_mode,
            mig_mode=d.mig_mode,
        )

    def _pcie(self, d: _Device) -> tuple[float | None, float | None]:
        now = self._clock()
        if now - d.pcie_read_at >= self._pcie_every_s:
            d.pcie_read_at = now
            d.pcie = (
                scaled(
                    self._call(d, "nvmlDeviceGetPcieThroughput", _const("NVML_PCIE_UTIL_TX_BYTES", 0)), _KIB
                ),
                scaled(
                    self._call(d, "nvmlDeviceGetPcieThroughput", _const("NVML_PCIE_UTIL_RX_BYTES", 1)), _KIB
                ),
            )
        return d.pcie

    def _throttle_mask(self, d: _Device) -> Any:
        # Renamed "clocks event reasons" in driver 535; older drivers only have the throttle name.
        current = "nvmlDeviceGetCurrentClocksEventReasons"
        mask = self._call(d, current)
        if mask is None and (current, ()) in d.unsupported:
            mask = self._call(d, "nvmlDeviceGetCurrentClocksThrottleReasons")
        return mask

    def _processes(self, d: _Device) -> tuple[GpuProcess, ...] | None:
        """Compute and graphics processes on the device (``--query-compute-apps=pid,used_memory``),
        with SM % from ``nvmlDeviceGetProcessUtilization``. PIDs are host PIDs."""
        compute = self._call(d, "nvmlDeviceGetComputeRunningProcesses")
        graphics = self._call(d, "nvmlDeviceGetGraphicsRunningProcesses")
        if compute is None and graphics is None:
            return None
        used: dict[int, int | None] = {}
        for p in [*(compute or ()), *(graphics or ())]:
            pid = int(p.pid)
            memory = number(getattr(p, "usedGpuMemory", None))
            # A process with both a compute and a graphics context is one row.
            used[pid] = memory if used.get(pid) is None else max(used[pid] or 0, memory or 0)
        if not used:
            return ()
        sm = self._process_sm_percent(d)
        return tuple(
            GpuProcess(pid=pid, used_memory_bytes=memory, sm_percent=None if sm is None else sm.get(pid, 0))
            for pid, memory in sorted(used.items())
        )

    def _process_sm_percent(self, d: _Device) -> dict[int, Any] | None:
        """SM % per PID since the previous call, or None where NVML cannot attribute it.

        NVML lists only processes with non-zero utilization since ``lastSeenTimeStamp`` and
        answers NOT_FOUND when there were none, so a PID missing here ran no kernel (0 %).
        """
        key = ("nvmlDeviceGetProcessUtilization", ())
        fn = getattr(pynvml, key[0], None)
        if key in d.unsupported or fn is None:
            return None
        try:
            samples = fn(d.handle, d.process_seen_us)
        except pynvml.NVMLError as e:
            code = getattr(e, "value", None)
            if code == self._not_found_code:
                return {}
            if code in self._skip_codes:
                d.unsupported.add(key)
            elif code == self._lost_code:
                d.lost = True
            return None
        latest: dict[int, Any] = {}
        for s in samples:
            if s.pid not in latest or s.timeStamp >= latest[s.pid].timeStamp:
                latest[s.pid] = s
            d.process_seen_us = max(d.process_seen_us, int(s.timeStamp))
        return {pid: number(s.smUtil) for pid, s in latest.items()}

    def _device_warnings(self, d: _Device) -> list[str]:
        label = f"GPU {d.index}" if not d.is_mig else f"MIG device {d.index} (GPU {d.parent_index})"
        if d.handle is None:
            return [f"{label}: NVML cannot reach this GPU (lost or in need of a reset)"]
        if d.lost:
            return [f"{label}: GPU is lost (fallen off the bus); it needs a reset or a reboot"]
        if d.persistence_mode is False:
            return [f"{label}: {PERSISTENCE_OFF_WARNING}"]
        return []


def _capability(value: Any) -> str | None:
    """NVML's (major, minor) as "9.0"; None when the driver could not say."""
    if isinstance(value, tuple | list) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return f"{value[0]}.{value[1]}"
    return None
