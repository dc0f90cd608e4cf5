"""ONNX export and ONNX Runtime: the graph is exported with a dynamic batch axis, checked against
the torch model, and run by an ORT session; ORT's own int8 quantization works on that graph."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from workers.passes.candidate import Candidate
from workers.passes.context import PassContext, PassOutcome

OPSET = 17
_ORT_LEVELS = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}
# Export is checked before anything is measured: outputs must agree with torch's within these.
FP32_ATOL, FP32_RTOL = 1e-4, 1e-3


class OrtModule(nn.Module):
    """An ONNX Runtime session behind the ``nn.Module`` call the harness times: torch in, torch out."""

    def __init__(
        self, onnx_bytes: bytes, *, threads: int, device: str = "cpu", graph_level: str = "all"
    ) -> None:
        super().__init__()
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _ORT_LEVELS[graph_level])
        wanted = (
            ["CUDAExecutionProvider", "CPUExecutionProvider"]
            if device.startswith("cuda")
            else ["CPUExecutionProvider"]
        )
        available = ort.get_available_providers()
        if device.startswith("cuda") and "CUDAExecutionProvider" not in available:
            raise ValueError(f"ONNX Runtime here has no CUDA provider (it has {', '.join(available)})")
        self.session = ort.InferenceSession(
            onnx_bytes, options, providers=[p for p in wanted if p in available]
        )
        self.input_name = self.session.get_inputs()[0].name
        self.provider = self.session.get_providers()[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (out, *_) = self.session.run(None, {self.input_name: x.detach().cpu().numpy()})
        return torch.from_numpy(out)


def export_onnx(module: nn.Module, example: torch.Tensor) -> bytes:
    """The module as ONNX bytes with the first axis named "batch" and dynamic."""
    buffer = io.BytesIO()
    torch.onnx.export(
        module.eval(),
        (example,),
        buffer,
        input_names=["input"],
        output_names=["output"],
        dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
        opset_version=OPSET,
        dynamo=False,  # the TorchScript exporter handles the zoo's models without onnxscript's rewrite step
    )
    return buffer.getvalue()


def _check_outputs(
    reference: nn.Module, session: OrtModule, ctx: PassContext, atol: float, rtol: float
) -> float:
    """Largest absolute difference on two generated batches of different sizes; raises if out of tolerance."""
    worst = 0.0
    for batch_size in (1, 5):
        x = ctx.example_batch(batch_size).cpu()
        with torch.inference_mode():
            expected = reference(x).float()
        got = session(x).float()
        if got.shape != expected.shape:
            raise ValueError(
                f"ONNX output shape {tuple(got.shape)} differs from torch's {tuple(expected.shape)}"
            )
        if not torch.allclose(got, expected, atol=atol, rtol=rtol):
            raise ValueError(
                f"ONNX outputs differ from torch's by up to {float((got - expected).abs().max()):.2e} (tolerance {atol:g})"
            )
        worst = max(worst, float((got - expected).abs().max()))
    return worst


def onnxruntime(candidate: Candidate, params: Mapping[str, Any], ctx: PassContext) -> PassOutcome:
    ctx.step("exporting to ONNX")
    reference = candidate.module.cpu().eval() if ctx.device.startswith("cpu") else candidate.module
    onnx_bytes = export_onnx(
        reference, ctx.example_batch(2).cpu() if ctx.device.startswith("cpu") else ctx.example_batch(2)
    )
    # "auto" follows the job's device (CUDA provider on a GPU); "cpu" keeps ORT on the CPU there.
    session_device = "cpu" if params.get("provider") == "cpu" else ctx.device
    session = OrtModule(
        onnx_bytes, threads=ctx.threads, device=session_device, graph_level=params["graph_optimization"]
    )
    worst = _check_outputs(reference, session, ctx, FP32_ATOL, FP32_RTOL)
    return PassOutcome(
        candidate.after(
            "onnxruntime",
            module=session,
            form="onnx",
            onnx_bytes=onnx_bytes,
            backend=f"onnxruntime {session.provider} fp32",
        ),
        notes=(
            f"exported at opset {OPSET}; outputs match torch's within {worst:.1e}",
            f"runs on {session.provider}",
        ),
        details={
            "opset": OPSET,
            "provider": session.provider,
            "max_abs_diff": worst,
            "graph_optimization": params["graph_optimization"],
            "provider_requested": params.get("provider", "auto"),
        },
    )


def _quantized(onnx_bytes: bytes, quantize) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp, "model.onnx"), Path(tmp, "model.int8.onnx")
        source.write_bytes(onnx_bytes)
        quantize(str(source), str(target))
        return target.read_bytes()


def _int8_notes(ctx: PassContext) -> tuple[str, ...]:
    if ctx.device.startswith("cuda"):
        # microsoft/onnxruntime#9115: the CUDA provider has few int8 kernels; QDQ graphs fall back.
        return (
            "ORT's CUDA provider runs most int8 ops through fallbacks and is often slower than fp32; measured, not assumed",
        )
    return ()


def ort_quantize_dynamic(candidate: Candidate, params: Mapping[str, Any], ctx: PassContext) -> PassOutcome:
    """ONNX Runtime's dynamic int8: weights quantized ahead of time, activations per call."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    ctx.step("ONNX Runtime dynamic int8")
    onnx_bytes = _quantized(
        candidate.onnx_bytes,
        lambda src, dst: quantize_dynamic(
            src, dst, weight_type=QuantType.QInt8, per_channel=params["per_channel"]
        ),
    )
    session = OrtModule(onnx_bytes, threads=ctx.threads, device=ctx.device)
    return PassOutcome(
        candidate.after(
            "ort_quantize_dynamic",
            module=session,
            onnx_bytes=onnx_bytes,
            backend=f"onnxruntime {session.provider} int8 (dynamic)",
        ),
        notes=_int8_notes(ctx),
        details={"per_channel": params["per_channel"], "provider": session.provider},
    )


def _as_numpy(batch: torch.Tensor) -> np.ndarray:
    array = batch.detach().cpu().numpy()
    return array if not np.issubdtype(array.dtype, np.floating) else array.astype(np.float32)


class _Reader:
    """ONNX Runtime's CalibrationDataReader protocol over a list of input batches."""

    def __init__(self, name: str, batches: list[torch.Tensor]) -> None:
        # Token ids stay int64: casting every input to float32 made ORT refuse a TinyTransformer graph.
        self._items = iter([{name: _as_numpy(b)} for b in batches])

    def get_next(self):
        return next(self._items, None)


def ort_quantize_static(candidate: Candidate, params: Mapping[str, Any], ctx: PassContext) -> PassOutcome:
    """ONNX Runtime's static int8 in QDQ format, calibrated on real training inputs where the model has
    a data set (generated ones otherwise, said so in the notes)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    ctx.step("ONNX Runtime static int8: calibrating")
    batches = ctx.calibration_batches(params["calibration_batches"])
    method = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }[params["calibration"]]
    onnx_bytes = _quantized(
        candidate.onnx_bytes,
        lambda src, dst: quantize_static(
            src,
            dst,
            _Reader("input", batches),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            per_channel=params["per_channel"],
            calibrate_method=method,
        ),
    )
    session = OrtModule(onnx_bytes, threads=ctx.threads, device=ctx.device)
    source = (
        f"{ctx.data.name} train split"
        if ctx.data is not None
        else "generated inputs (the model has no data set)"
    )
    return PassOutcome(
        candidate.after(
            "ort_quantize_static",
            module=session,
            onnx_bytes=onnx_bytes,
            backend=f"onnxruntime {session.provider} int8 (static QDQ)",
        ),
        notes=(
            f"calibrated ({params['calibration']}) on {len(batches)} batches of the {source}",
            *_int8_notes(ctx),
        ),
        details={
            "calibration": params["calibration"],
            "calibration_source": "data" if ctx.data is not None else "generated",
            "calibration_samples": sum(len(b) for b in batches),
        },
    )
