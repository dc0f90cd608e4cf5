"""The one adapter around NVML (the library behind ``nvidia-smi``); nothing else calls pynvml.

Opening fails with one typed error, ``NvmlUnavailable``, carrying a human reason. Once open,
reading never raises: a metric a GPU does not support becomes ``None``.
"""

from __future__ import annotations

import logging
from typing import Any

from workers.sampler.sample import GpuSample

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
    """``pynvml.<fn_name>(*args)``, or ``default`` when NVML cannot give that metric.

    nvitop's ``nvmlQuery(..., default=NA)`` pattern: a fanless or passively capped card answers
    NOT_SUPPORTED for some fields, and that must blank one field, not the whole sample.
    The function is looked up by name so that bindings too old to have it also give ``default``.
    """
    try:
        return getattr(pynvml, fn_name)(*args)
    except (pynvml.NVMLError, AttributeError):
        return default


def _text(value: object) -> str | None:
    """pynvml returns bytes or str depending on its version; always give str."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _field(struct: object, name: str) -> Any:
    """A field of an NVML result structure, or ``None`` when the query itself gave ``None``."""
    return None if struct is None else getattr(struct, name, None)


def _watts(milliwatts: float | int | None) -> float | None:
    return None if milliwatts is None else milliwatts / 1000.0


class Nvml:
    """An open NVML session with the device handles cached; use ``Nvml.open()``, then ``close()``."""

    def __init__(self, handles: list[Any]) -> None:
        self._handles = handles
        self._names = [_text(_query("nvmlDeviceGetName", h)) if h is not None else None for h in handles]
        self._uuids = [_text(_query("nvmlDeviceGetUUID", h)) if h is not None else None for h in handles]
        self._closed = False

    @classmethod
    def open(cls) -> Nvml:
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
        return cls(handles)

    def close(self) -> None:
        """Shut NVML down (``nvmlShutdown``); safe to call twice."""
        if not self._closed:
            self._closed = True
            _query("nvmlShutdown")

    def __enter__(self) -> Nvml:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def device_count(self) -> int:
        """Number of GPUs (``nvidia-smi --query-gpu=count``)."""
        return len(self._handles)

    def driver_version(self) -> str | None:
        """Kernel driver version such as "550.54.15" (``--query-gpu=driver_version``)."""
        return _text(_query("nvmlSystemGetDriverVersion"))

    def cuda_driver_version(self) -> str | None:
        """Newest CUDA the driver supports, e.g. "12.4" (the "CUDA Version" in ``nvidia-smi``'s header)."""
        version = _query("nvmlSystemGetCudaDriverVersion")
        if version is None:
            return None
        # NVML encodes 12.4 as 12040: major * 1000 + minor * 10.
        return f"{version // 1000}.{version % 1000 // 10}"

    def static_info(self) -> list[dict[str, Any]]:
        """Facts that do not change while the driver is loaded: ``--query-gpu=index,name,uuid,memory.total,pci.bus_id``."""
        out = []
        for index, handle in enumerate(self._handles):
            mem = _query("nvmlDeviceGetMemoryInfo", handle) if handle is not None else None
            pci = _query("nvmlDeviceGetPciInfo", handle) if handle is not None else None
            out.append(
                {
                    "index": index,
                    "name": self._names[index],
                    "uuid": self._uuids[index],
                    "memory_total_bytes": _field(mem, "total"),
                    "pci_bus_id": _text(_field(pci, "busId")),
                }
            )
        return out

    def sample(self) -> tuple[GpuSample, ...]:
        """One reading per GPU; never raises. Unsupported or unreadable fields are ``None``."""
        return tuple(self._sample_one(i, h) for i, h in enumerate(self._handles))

    def _sample_one(self, index: int, handle: Any) -> GpuSample:
        """Fields map to ``nvidia-smi --query-gpu=``: utilization.gpu, utilization.memory (%),
        memory.used/free/total (bytes), temperature.gpu (°C), power.draw and enforced.power.limit
        (W; NVML reports mW), clocks.sm and clocks.mem (MHz), fan.speed (%).
        """
        if handle is None:
            return _empty_sample(index, self._names[index], self._uuids[index])
        util = _query("nvmlDeviceGetUtilizationRates", handle)
        mem = _query("nvmlDeviceGetMemoryInfo", handle)
        return GpuSample(
            index=index,
            uuid=self._uuids[index],
            name=self._names[index],
            utilization_gpu_percent=_field(util, "gpu"),
            utilization_memory_percent=_field(util, "memory"),
            memory_used_bytes=_field(mem, "used"),
            memory_free_bytes=_field(mem, "free"),
            memory_total_bytes=_field(mem, "total"),
            temperature_c=_query("nvmlDeviceGetTemperature", handle, pynvml.NVML_TEMPERATURE_GPU),
            power_draw_w=_watts(_query("nvmlDeviceGetPowerUsage", handle)),
            power_limit_w=_watts(_query("nvmlDeviceGetEnforcedPowerLimit", handle)),
            sm_clock_mhz=_query("nvmlDeviceGetClockInfo", handle, pynvml.NVML_CLOCK_SM),
            mem_clock_mhz=_query("nvmlDeviceGetClockInfo", handle, pynvml.NVML_CLOCK_MEM),
            fan_percent=_query("nvmlDeviceGetFanSpeed", handle),
        )


def _empty_sample(index: int, name: str | None, uuid: str | None) -> GpuSample:
    return GpuSample(index, uuid, name, None, None, None, None, None, None, None, None, None, None, None)
