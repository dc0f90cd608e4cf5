"""Quantization of torch modules: dynamic int8 (weights int8, activations quantized per call) and
half precision (fp16/bf16). Static int8 with calibration is done on the ONNX graph
(``onnx_runtime.ort_quantize_static``), where ONNX Runtime has the calibrators and the kernels."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from workers.passes.candidate import Candidate
from workers.passes.context import PassContext, PassOutcome

HALF_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def quantize_dynamic(candidate: Candidate, params: Mapping[str, Any], ctx: PassContext) -> PassOutcome:
    """``torch.ao.quantization.quantize_dynamic`` on Linear (and LSTM) layers, fbgemm kernels on x86.

    torch.ao.quantization is deprecated in favour of torchao, whose int8 paths only pay off under
    torch.compile (3.4x slower than eager on this CPU without it), so the eager CPU path stays here
    and the measurement decides whether it wins."""
    if not ctx.device.startswith("cpu"):
        raise ValueError("dynamic int8 quantization runs on the CPU (fbgemm/qnnpack kernels)")
    engine = params["engine"]
    if engine not in torch.backends.quantized.supported_engines:
        raise ValueError(
            f"quantized engine {engine!r} is not available here: {torch.backends.quantized.supported_engines}"
        )
    torch.backends.quantized.engine = engine
    layer_types = {nn.Linear, nn.LSTM}
    model = copy.deepcopy(candidate.module).cpu().eval()
    if not any(isinstance(m, tuple(layer_types)) for m in model.modules()):
        raise ValueError("no Linear or LSTM layer to quantize")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from torch.ao.quantization import quantize_dynamic as ao_quantize_dynamic

        quantized = ao_quantize_dynamic(model, layer_types, dtype=torch.qint8)
    _off_fast_path(quantized)
    count = sum(
        1 for m in quantized.modules() if type(m).__module__.startswith("torch.ao.nn.quantized.dynamic")
    )
    return PassOutcome(
        candidate.after("quantize_dynamic", module=quantized, backend=f"torch eager int8 dynamic ({engine})"),
        notes=(f"{count} layers run int8 kernels ({engine}); other layers stay fp32",),
        details={"quantized_layers": count, "engine": engine},
    )


def _no_op_hook(module: nn.Module, args: tuple) -> None:
    return None


def _off_fast_path(model: nn.Module) -> None:
    """nn.TransformerEncoderLayer's inference fast path reads ``linear1.weight`` as a tensor, but a
    dynamic int8 Linear's ``weight`` is a method, so the layer raises AttributeError on its first
    call. Any forward pre-hook sends that layer down the ordinary path (the fast path checks for
    hooks before it reads the weights), so each such layer gets one that does nothing."""
    for module in model.modules():
        if isinstance(module, nn.TransformerEncoderLayer) and not isinstance(module.linear1, nn.Linear):
            module.register_forward_pre_hook(_no_op_hook)


class _CastIO(nn.Module):
    """Runs ``inner`` in a lower precision but keeps the model's contract: float32 in, float32 out."""

    def __init__(self, inner: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.inner = inner
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.dtype) if x.is_floating_point() else x
        return self.inner(x).float()


def half_precision(candidate: Candidate, params: Mapping[str, Any], ctx: PassContext) -> PassOutcome:
    """Convert the weights to fp16 or bf16. On a GPU both are native; on a CPU bf16 needs AVX512-BF16
    or AMX to be fast and fp16 is mostly emulated, which the measurement will show."""
    name = params["dtype"]
    dtype = HALF_DTYPES[name]
    model = copy.deepcopy(candidate.module).to(ctx.device, dtype=dtype).eval()
    notes = []
    if ctx.device.startswith("cpu"):
        notes.append(
            f"{name} on a CPU is only fast with native support (bf16: AVX512-BF16/AMX); measured, not assumed"
        )
    return PassOutcome(
        candidate.after(f"half_{name}", module=_CastIO(model, dtype), backend=f"torch eager {name}"),
        notes=tuple(notes),
        details={"dtype": name},
    )
