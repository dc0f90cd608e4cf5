"""Node sampling: host readings through psutil, GPU readings through NVML."""

from __future__ import annotations

from workers.sampler.host import HostProbe, cpu_model
from workers.sampler.loop import Sampler
from workers.sampler.node_info import describe_node
from workers.sampler.nvml import Nvml, NvmlUnavailable
from workers.sampler.sample import (
    METRIC_UNITS,
    GpuProcess,
    GpuSample,
    HostSample,
    NodeSample,
    ProcessRow,
    TopProcesses,
)

__all__ = [
    "METRIC_UNITS",
    "GpuProcess",
    "GpuSample",
    "HostProbe",
    "HostSample",
    "NodeSample",
    "Nvml",
    "NvmlUnavailable",
    "ProcessRow",
    "Sampler",
    "TopProcesses",
    "cpu_model",
    "describe_node",
]
