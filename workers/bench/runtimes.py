"""The runtime a benchmark times the model on: eager PyTorch, torch.compile or ONNX Runtime.

``prepare_runtime`` wraps the model once, before anything is timed, and says for the result's env
what actually runs. A model loaded from an ONNX registry artifact is already an ONNX Runtime
session: it is rebuilt with the spec's threads and graph level and recorded as "onnxruntime" even
when the spec says "eager" (the default), and torch.compile is refused for it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from workers.bench.spec import BenchSpec
from workers.zoo import InputSpec

# The batch sizes an exported graph is checked at: two, so a batch axis that did not stay dynamic shows.
_CHECK_BATCH_SIZES = (1, 5)


@dataclass(frozen=True)
class Prepared:
    """What the harness times and how.

    - ``module``: called with one input batch.
    - ``env``: the runtime keys of the result's env ("runtime", and "compile_mode" or the "ort_*" keys).
    - ``compiles``: torch.compile; the first call at each new batch size compiles (``compile_call``).
    - ``host_io``: ONNX Runtime takes and returns host arrays: inputs are made on the CPU and each
      call is timed with the host clock (the copies to and from the GPU are part of the call).
    """

    module: Callable[[torch.Tensor], Any]
    env: dict[str, Any] = field(default_factory=dict)
    compiles: bool = False
    host_io: bool = False


def is_onnx_artifact(model: object) -> bool:
    from workers.registry.onnx_format import OnnxModule

    return isinstance(model, OnnxModule)


def prepare_runtime(model: Any, input_spec: InputSpec, spec: BenchSpec, dtype: torch.dtype) -> Prepared:
    """The model wrapped for ``spec.runtime``, moved to ``spec.device`` and cast to ``dtype``.
    Raises ``ValueError`` with the reason when the model cannot run that way (export failed,
    outputs disagree with torch's, torch.compile asked of an ONNX file)."""
    assert spec.device is not None and spec.threads is not None  # resolved by BenchSpec
    if is_onnx_artifact(model):
        if spec.runtime == "torch_compile":
            raise ValueError(
                "this model is an ONNX file: it runs on ONNX Runtime, not torch.compile; choose runtime onnxruntime"
            )
        return _ort_prepared(model.onnx_path.read_bytes(), spec, source="registry artifact")
    if spec.runtime == "onnxruntime":
        return _exported(model, input_spec, spec)
    module = model.to(device=spec.device, dtype=dtype).eval()
    if spec.runtime == "torch_compile":
        # Graphs compiled by earlier jobs in this worker process would count against dynamo's
        # recompile limit (per code object, so per model class); each benchmark starts afresh.
        torch._dynamo.reset()
        # dynamic=False: each batch size gets its own specialised graph, compiled on its first call.
        compiled = torch.compile(module, mode=spec.compile_mode, dynamic=False)
        return Prepared(
            compiled, {"runtime": "torch_compile", "compile_mode": spec.compile_mode}, compiles=True
        )
    return Prepared(module, {"runtime": "eager"})


def _ort_prepared(onnx_bytes: bytes, spec: BenchSpec, source: str) -> Prepared:
    import onnxruntime

    from workers.passes.onnx_runtime import OrtModule

    assert spec.device is not None and spec.threads is not None
    on_gpu = spec.device.startswith("cuda")
    provider = spec.ort_provider or ("cuda" if on_gpu else "cpu")
    level = spec.ort_graph_optimization or "all"
    session = OrtModule(onnx_bytes, threads=spec.threads, device=spec.device, graph_level=level)
    return Prepared(
        session,
        {
            "runtime": "onnxruntime",
            "ort_provider": provider,
            # What ORT chose to run first: a CUDA session may still place some nodes on the CPU.
            "ort_session_provider": session.provider,
            "ort_graph_optimization": level,
            "onnxruntime_version": onnxruntime.__version__,
            "onnx_source": source,
        },
        host_io=True,
    )


def _first_tensor(out: Any) -> torch.Tensor:
    return out if isinstance(out, torch.Tensor) else out[0]


def _exported(model: nn.Module, input_spec: InputSpec, spec: BenchSpec) -> Prepared:
    """Export on the CPU in fp32 with a dynamic batch axis, then check ORT's outputs against torch's."""
    from workers.passes.onnx_runtime import FP32_ATOL, FP32_RTOL, export_onnx

    reference = model.to(device="cpu", dtype=torch.float32).eval()
    generator = torch.Generator().manual_seed(0)
    try:
        onnx_bytes = export_onnx(reference, input_spec.make(2, device="cpu", generator=generator))
    except Exception as exc:
        raise ValueError(f"the model does not export to ONNX: {type(exc).__name__}: {exc}") from exc
    prepared = _ort_prepared(onnx_bytes, spec, source="exported from torch")
    worst = 0.0
    for batch_size in _CHECK_BATCH_SIZES:
        x = input_spec.make(batch_size, device="cpu", generator=generator)
        with torch.inference_mode():
            expected = _first_tensor(reference(x)).float()
        got = _first_tensor(prepared.module(x)).float()
        if got.shape != expected.shape:
            raise ValueError(
                f"ONNX Runtime's output shape {tuple(got.shape)} differs from torch's {tuple(expected.shape)} "
                f"at batch {batch_size}"
            )
        diff = float((got - expected).abs().max()) if got.numel() else 0.0
        if not torch.allclose(got, expected, atol=FP32_ATOL, rtol=FP32_RTOL):
            raise ValueError(
                f"ONNX Runtime's outputs differ from torch's by up to {diff:.2e} at batch {batch_size} "
                f"(tolerance {FP32_ATOL:g} + {FP32_RTOL:g} relative); not benchmarked"
            )
        worst = max(worst, diff)
    prepared.env["ort_max_abs_diff"] = worst
    return prepared


def compile_scope(spec: BenchSpec) -> contextlib.AbstractContextManager[Any]:
    """Around a torch.compile sweep: dynamo's recompile limit (8 by default) raised so every batch
    size, and batch 1 of the concurrency test, gets its own graph; past the limit dynamo would run
    the model eagerly without a word, and eager latencies would be reported as compiled ones."""
    if spec.runtime != "torch_compile":
        return contextlib.nullcontext()
    import torch._dynamo.config as dynamo_config

    needed = len(set(spec.batch_sizes) | ({1} if spec.concurrency else set())) + 1
    return dynamo_config.patch(recompile_limit=max(needed, dynamo_config.recompile_limit))


def compiled_graphs() -> int | None:
    """How many graphs torch.compile has compiled in this process so far (dynamo's own counter),
    or None where this torch does not keep it."""
    try:
        from torch._dynamo.utils import counters

        return int(counters["stats"]["unique_graphs"])
    except (ImportError, AttributeError, KeyError, TypeError):
        return None


@dataclass(frozen=True)
class CompileCall:
    """The first, compiling call at one batch size: its wall time and the graphs it compiled."""

    compile_s: float
    graphs: int | None


def compile_call(module: Callable[[torch.Tensor], Any], x: torch.Tensor, mode: str | None) -> CompileCall:
    """Call ``module`` once so torch.compile compiles for this input shape, timed apart from the
    latencies. A node without a C++ compiler gets the reason in words, not inductor's traceback."""
    before = compiled_graphs()
    started = time.perf_counter()
    try:
        module(x)
        if x.device.type == "cuda":
            torch.cuda.synchronize(x.device)
    except Exception as exc:
        text = str(exc)
        if "InvalidCxxCompiler" in type(exc).__name__ or "C compiler" in text or "C++ compiler" in text:
            raise RuntimeError(
                f"torch.compile ({mode}) needs a working C++ compiler (g++) on this node for CPU code; "
                "install one or choose runtime eager"
            ) from exc
        raise
    compile_s = time.perf_counter() - started
    after = compiled_graphs()
    graphs = None if before is None or after is None else after - before
    if graphs == 0:
        # Dynamo gave up on this shape (a recompile limit) and ran the model eagerly: timing it
        # would report eager latencies as compiled ones.
        raise RuntimeError(
            f"torch.compile ({mode}) compiled no graph for input shape {tuple(x.shape)}; "
            "the model would run eagerly, so it is not timed"
        )
    return CompileCall(compile_s, graphs)
