"""What a benchmark measures: a frozen, validated spec built from job params.

Validation here covers everything that does not depend on the node (types, ranges, shapes of
lists). What does depend on it (CUDA present, enough GPUs, bf16 support) is checked by
``BenchSpec.check_supported`` when the run starts, or by the API against the target node.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

# The one source of these limits: the job params model, the form and the API read them from here.
MAX_BATCH_SIZE = 4096
MAX_SWEEP_POINTS = 16
MAX_ITERATIONS = 100_000
MAX_THREADS = 512
MAX_CONCURRENCY = 64
MAX_CONCURRENCY_LEVELS = 8
MAX_DEVICES = 16
MAX_TIME_BUDGET_S = 3600.0
DEFAULT_MAX_ITERATIONS = 10_000
DEFAULT_MIN_DURATION_S = 1.0
PRECISIONS = ("fp32", "fp16", "bf16")
Precision = Literal["fp32", "fp16", "bf16"]
# How the model runs; each runtime's options are named after it and refused with another runtime.
RUNTIMES = ("eager", "torch_compile", "onnxruntime")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")
ORT_PROVIDERS = ("cpu", "cuda")
ORT_GRAPH_OPTIMIZATIONS = ("disable", "basic", "extended", "all")
RUNTIME_OPTIONS = {
    "torch_compile": ("compile_mode",),
    "onnxruntime": ("ort_provider", "ort_graph_optimization"),
}

_DEVICE_RE = re.compile(r"cpu|cuda(:\d+)?")
_CUDA_INDEXED_RE = re.compile(r"cuda:\d+")


class SpecError(ValueError):
    """A ValueError that names the parameter it is about, so a form can show it beside that field."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def _either(values: tuple[str, ...]) -> str:
    return f"{', '.join(values[:-1])} or {values[-1]}"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class BenchSpec:
    """What to measure; every ``*_s`` is seconds of wall time. Invalid values raise ``ValueError``.

    - ``batch_sizes``: the sweep, each 1..4096, timed in the order given.
    - ``iterations``: the minimum count of timed iterations per batch size (MLPerf LoadGen's
      min query count); timing goes on until the 95% CI of the median is within +/-2% of it.
    - ``min_duration_s``: the minimum timed duration per batch size (LoadGen's min duration);
      default min(1.0, time_budget_s).
    - ``time_budget_s``: the wall-time cap per batch size, warm-up included; it wins over the
      minimums, so a slow model may end with fewer than ``iterations``.
    - ``max_iterations``: a cap on timed iterations per batch size, which bounds the stored raw
      times; default max(10_000, iterations).
    - ``warmup_iterations``: the minimum warm-up count; warm-up continues in blocks until the
      block median settles. Default max(10, min(iterations // 5, 200)).
    - ``device``: "cpu", "cuda" or "cuda:N"; default ``devices[0]`` when ``devices`` is set, else "cpu".
    - ``precision``: "fp32", "fp16" or "bf16": the model's floating weights and floating inputs are
      cast to it (no autocast), so the forward pass runs in that dtype.
    - ``threads``: CPU intra-op threads, default ``os.cpu_count()``; always recorded.
    - ``concurrency``: client-thread counts for the concurrency test (batch 1, ``load_duration_s``
      each), sorted and de-duplicated; empty skips the test.
    - ``devices``: "cuda:N" names for the multi-GPU scaling test; empty skips it.
    - ``load_duration_s``: measured duration of each concurrency level and multi-GPU point.
    - ``runtime``: "eager" (plain PyTorch), "torch_compile" (inductor, each batch size compiled once
      before its warm-up; ``compile_mode`` "default", "reduce-overhead" or "max-autotune") or
      "onnxruntime" (exported to ONNX with a dynamic batch axis, checked against torch, run by an ORT
      session with ``threads`` intra-op threads; ``ort_provider`` "cpu" or "cuda", default from
      ``device``, and ``ort_graph_optimization`` "disable", "basic", "extended" or "all", default
      "all"; fp32 only). Options of a runtime that is not chosen are refused; the chosen one's are
      resolved to their defaults, so the spec records exactly what ran.
    """

    batch_sizes: tuple[int, ...]
    iterations: int
    warmup_iterations: int | None = None
    device: str | None = None
    precision: Precision = "fp32"
    threads: int | None = None
    time_budget_s: float = 10.0
    min_duration_s: float | None = None
    max_iterations: int | None = None
    concurrency: tuple[int, ...] = ()
    devices: tuple[str, ...] = ()
    load_duration_s: float = 2.0
    runtime: str = "eager"
    compile_mode: str | None = None
    ort_provider: str | None = None
    ort_graph_optimization: str | None = None

    def __post_init__(self) -> None:
        # Lists arrive from JSON; a frozen spec holds tuples so it stays hashable.
        for name in ("batch_sizes", "concurrency", "devices"):
            value = getattr(self, name)
            if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
                raise ValueError(f"{name} must be a list, not {value!r}")
            object.__setattr__(self, name, tuple(value))
        self._check_batch_sizes()
        self._check_counts()
        self._check_durations()
        self._check_devices()
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")
        if self.threads is None:
            object.__setattr__(self, "threads", os.cpu_count() or 1)
        elif not _is_int(self.threads) or self.threads < 1:
            raise ValueError(f"threads must be an integer >= 1, not {self.threads!r}")
        for c in self.concurrency:
            if not _is_int(c) or not 1 <= c <= MAX_CONCURRENCY:
                raise ValueError(
                    f"each concurrency must be an integer from 1 to {MAX_CONCURRENCY}, not {c!r}"
                )
        object.__setattr__(self, "concurrency", tuple(sorted(set(self.concurrency))))
        self._check_runtime()

    def _check_batch_sizes(self) -> None:
        if not self.batch_sizes:
            raise ValueError("batch_sizes must not be empty")
        for b in self.batch_sizes:
            if not _is_int(b) or not 1 <= b <= MAX_BATCH_SIZE:
                raise ValueError(f"each batch size must be an integer from 1 to {MAX_BATCH_SIZE}, not {b!r}")

    def _check_counts(self) -> None:
        if not _is_int(self.iterations) or self.iterations < 1:
            raise ValueError(f"iterations must be an integer >= 1, not {self.iterations!r}")
        if self.max_iterations is None:
            object.__setattr__(self, "max_iterations", max(DEFAULT_MAX_ITERATIONS, self.iterations))
        elif not _is_int(self.max_iterations) or self.max_iterations < self.iterations:
            raise ValueError(
                f"max_iterations must be an integer >= iterations ({self.iterations}), not {self.max_iterations!r}"
            )
        if self.warmup_iterations is None:
            object.__setattr__(self, "warmup_iterations", max(10, min(self.iterations // 5, 200)))
        elif not _is_int(self.warmup_iterations) or self.warmup_iterations < 0:
            raise ValueError(f"warmup_iterations must be an integer >= 0, not {self.warmup_iterations!r}")

    def _check_durations(self) -> None:
        if self.min_duration_s is None and _is_number(self.time_budget_s):
            object.__setattr__(self, "min_duration_s", min(DEFAULT_MIN_DURATION_S, self.time_budget_s))
        for name in ("time_budget_s", "min_duration_s", "load_duration_s"):
            value = getattr(self, name)
            if not _is_number(value) or not 0 < value <= MAX_TIME_BUDGET_S:
                raise ValueError(
                    f"{name} must be a number of seconds in (0, {MAX_TIME_BUDGET_S:g}], not {value!r}"
                )
            object.__setattr__(self, name, float(value))
        assert self.min_duration_s is not None
        if self.min_duration_s > self.time_budget_s:
            raise ValueError(
                f"min_duration_s ({self.min_duration_s:g}) must not exceed time_budget_s ({self.time_budget_s:g})"
            )

    def _check_devices(self) -> None:
        if len(self.devices) > MAX_DEVICES:
            raise ValueError(f"devices may name at most {MAX_DEVICES} GPUs, not {len(self.devices)}")
        for d in self.devices:
            if not isinstance(d, str) or not _CUDA_INDEXED_RE.fullmatch(d):
                raise ValueError(f'each of devices must be "cuda:N" with an explicit index, not {d!r}')
        if len(set(self.devices)) != len(self.devices):
            raise ValueError(f"devices must not repeat a GPU: {list(self.devices)}")
        if self.device is None:
            object.__setattr__(self, "device", self.devices[0] if self.devices else "cpu")
        elif not isinstance(self.device, str) or not _DEVICE_RE.fullmatch(self.device):
            raise ValueError(f'device must be "cpu", "cuda" or "cuda:N", not {self.device!r}')

    def _check_runtime(self) -> None:
        if self.runtime not in RUNTIMES:
            raise SpecError(f"Runtime {self.runtime!r} is unknown: {_either(RUNTIMES)}", "runtime")
        for runtime, options in RUNTIME_OPTIONS.items():
            for option in options:
                if runtime != self.runtime and getattr(self, option) is not None:
                    raise SpecError(f"{option} applies to runtime {runtime} only, not {self.runtime}", option)
        if self.runtime == "torch_compile":
            self._resolve("compile_mode", COMPILE_MODES, "default")
        elif self.runtime == "onnxruntime":
            assert self.device is not None  # resolved in _check_devices
            on_gpu = self.device.startswith("cuda")
            self._resolve("ort_provider", ORT_PROVIDERS, "cuda" if on_gpu else "cpu")
            self._resolve("ort_graph_optimization", ORT_GRAPH_OPTIMIZATIONS, "all")
            if (self.ort_provider == "cuda") != on_gpu:
                raise SpecError(
                    f"ONNX Runtime's {self.ort_provider} provider cannot run on device {self.device}: "
                    + ("choose a GPU to run on" if self.ort_provider == "cuda" else "choose provider cuda"),
                    "ort_provider",
                )
            if self.precision != "fp32":
                raise SpecError(
                    f"ONNX Runtime runs the exported fp32 graph; precision {self.precision} is not "
                    "available with it (choose fp32, or runtime eager or torch_compile)",
                    "precision",
                )
        if self.runtime != "eager" and self.devices:
            raise SpecError(
                f"the multi-GPU scaling test runs eager models only, not {self.runtime}", "devices"
            )

    def _resolve(self, option: str, allowed: tuple[str, ...], default: str) -> None:
        value = getattr(self, option)
        if value is None:
            object.__setattr__(self, option, default)
        elif value not in allowed:
            raise SpecError(f"{option} {value!r} is unknown: {_either(allowed)}", option)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> BenchSpec:
        """A spec from job params as decoded from JSON (lists, ints, floats); unknown keys raise ``ValueError``."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(
                f"unknown benchmark parameter(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        for required in ("batch_sizes", "iterations"):
            if required not in params:
                raise ValueError(f"{required} is required")
        return cls(**params)

    def check_supported(self, cuda_device_count: int | None = None) -> None:
        """Raise ``ValueError`` if this node cannot run the spec.

        ``cuda_device_count`` is the target node's GPU count; ``None`` asks local torch, and then
        bf16 support of the CUDA devices is checked as well.
        """
        local = cuda_device_count is None
        if local:
            import torch

            cuda_device_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        assert self.device is not None  # resolved in __post_init__
        cuda_wanted = [d for d in (self.device, *self.devices) if d.startswith("cuda")]
        if cuda_wanted and cuda_device_count == 0:
            what = "devices" if self.devices else f"device {self.device!r}"
            raise ValueError(f"{what} needs CUDA GPUs, but this node has none")
        for d in cuda_wanted:
            index = int(d.partition(":")[2] or 0)
            if index >= cuda_device_count:
                raise ValueError(f"{d} requested but this node has {cuda_device_count} CUDA device(s)")
        if local and self.precision == "bf16" and cuda_wanted:
            import torch

            if not torch.cuda.is_bf16_supported():
                raise ValueError("bf16 requested but this node's GPU does not support bfloat16")

    def to_json(self) -> dict[str, Any]:
        return {
            "batch_sizes": list(self.batch_sizes),
            "iterations": self.iterations,
            "warmup_iterations": self.warmup_iterations,
            "device": self.device,
            "precision": self.precision,
            "threads": self.threads,
            "time_budget_s": self.time_budget_s,
            "min_duration_s": self.min_duration_s,
            "max_iterations": self.max_iterations,
            "concurrency": list(self.concurrency),
            "devices": list(self.devices),
            "load_duration_s": self.load_duration_s,
            "runtime": self.runtime,
            "compile_mode": self.compile_mode,
            "ort_provider": self.ort_provider,
            "ort_graph_optimization": self.ort_graph_optimization,
        }
