"""Static facts about a node, sent once when its sampler starts."""

from __future__ import annotations

import importlib.util
import os
import socket
from pathlib import Path
from types import ModuleType
from typing import Any

import psutil

from workers.sampler.host import cpu_model
from workers.sampler.nvml import Nvml


def _torch_version_module() -> ModuleType | None:
    """torch/version.py loaded on its own: importing torch would cost this long-lived daemon
    about 250 MB of memory for three strings."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "version.py"
    version_spec = importlib.util.spec_from_file_location("_perfmon_torch_version", path)
    if version_spec is None or version_spec.loader is None:
        return None
    module = importlib.util.module_from_spec(version_spec)
    try:
        version_spec.loader.exec_module(module)
    except Exception:  # a torch without version.py: report unknown rather than fail the node
        return None
    return module


def describe_node(node_name: str, nvml: Nvml | None, gpu_status: str | None = None) -> dict[str, Any]:
    """Hardware and software of this node as plain JSON.

    ``gpu_status`` defaults to "ok" when ``nvml`` has GPUs and "no GPU" otherwise; pass
    ``Sampler.gpu_status`` to keep the reason NVML could not be opened.
    """
    torch_version = _torch_version_module()
    gpus = nvml.static_info() if nvml is not None else []
    if gpu_status is None:
        gpu_status = "ok" if gpus else "no GPU"
    return {
        "hostname": socket.gethostname(),
        "node": node_name,
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_total_bytes": int(psutil.virtual_memory().total),
        "torch_version": getattr(torch_version, "__version__", None),
        "cuda_version": getattr(torch_version, "cuda", None),
        "driver_version": nvml.driver_version() if nvml is not None else None,
        "cuda_driver_version": nvml.cuda_driver_version() if nvml is not None else None,
        "gpus": gpus,
        "gpu_status": gpu_status,
        # Pages badge a simulated node and job submission refuses its GPUs (no CUDA behind them).
        "simulated": bool(nvml is not None and nvml.simulated),
    }
