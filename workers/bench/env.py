"""The environment a benchmark ran in, recorded next to its times so results can be compared."""

from __future__ import annotations

import os
import platform
import socket
from typing import Any

import torch

from workers.sampler.host import cpu_model
from workers.sampler.nvml import Nvml, NvmlUnavailable


def _driver_version() -> str | None:
    """The NVIDIA driver version, or ``None`` without one; never raises."""
    try:
        with Nvml.open() as nvml:
            return nvml.driver_version()
    except NvmlUnavailable:
        return None
    except Exception:  # a broken NVML install must not fail the benchmark it describes
        return None


def _cuda_device_name(device: str) -> str | None:
    try:
        return torch.cuda.get_device_name(torch.device(device))
    except (RuntimeError, AssertionError, ValueError):
        return None


def _cudnn_version() -> int | None:
    try:
        return torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    except RuntimeError:
        return None


def _cpu_capability() -> str | None:
    # The widest vector ISA torch's CPU kernels use here ("AVX2", "AVX512"...): without AVX512-BF16/FP16
    # or AMX, bf16 and fp16 run through conversions and are slower than fp32.
    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):
        return None


def capture_env(
    device: str, threads: int, precision: str = "fp32", devices: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Versions and hardware for a run on ``device`` ("cpu", "cuda", "cuda:N") with ``threads`` CPU
    threads (torch intra-op) at ``precision``; ``devices`` are the GPUs of a multi-GPU test."""
    model = cpu_model()
    is_cuda = torch.device(device).type == "cuda"
    return {
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "cpu_model": model,
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "interop_threads": torch.get_num_interop_threads(),
        "cpu_capability": _cpu_capability(),
        "precision": precision,
        "device": device,
        "device_name": _cuda_device_name(device) if is_cuda else model,
        "devices": [{"device": d, "device_name": _cuda_device_name(d)} for d in devices],
        "cuda_version": torch.version.cuda,
        "cudnn_version": _cudnn_version(),
        "driver_version": _driver_version(),
    }
