"""Size of a candidate: bytes of its saved artifact, parameters and non-zero parameters."""

from __future__ import annotations

import io
from typing import Any

import torch

from workers.passes.candidate import Candidate


def _tensors(candidate: Candidate) -> list[torch.Tensor]:
    if candidate.form == "onnx" and candidate.onnx_bytes is not None:
        import onnx
        from onnx import numpy_helper

        graph = onnx.load_from_string(candidate.onnx_bytes).graph
        return [torch.from_numpy(numpy_helper.to_array(t).copy()) for t in graph.initializer]
    tensors = []
    for value in candidate.module.state_dict().values():
        if isinstance(value, torch.Tensor):
            tensors.append(value.dequantize() if value.is_quantized else value)
        elif isinstance(value, tuple):  # packed quantized Linear params: (weight, bias)
            tensors.extend(
                v.dequantize() if v.is_quantized else v for v in value if isinstance(v, torch.Tensor)
            )
    return tensors


def artifact_bytes(candidate: Candidate) -> int:
    """The ONNX graph's length, or the size torch.save writes for the state dict (size only: nothing
    here is ever loaded back with pickle; registered artifacts are saved as ONNX or safetensors)."""
    if candidate.form == "onnx" and candidate.onnx_bytes is not None:
        return len(candidate.onnx_bytes)
    buffer = io.BytesIO()
    torch.save(candidate.module.state_dict(), buffer)
    return buffer.tell()


def size_report(candidate: Candidate) -> dict[str, Any]:
    tensors = [
        t for t in _tensors(candidate) if t.is_floating_point() or t.dtype in (torch.int8, torch.uint8)
    ]
    weights = [t for t in tensors if t.dim() >= 1]
    return {
        "size_bytes": artifact_bytes(candidate),
        "params": sum(t.numel() for t in weights),
        "nonzero_params": sum(int(torch.count_nonzero(t)) for t in weights),
    }
