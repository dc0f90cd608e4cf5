"""Loading a stored model for a forward pass, and the worker's test forward with the declared input spec.

``load_model`` is how anything (the validation task, the benchmark harness) gets a callable from a
stored file: it re-detects the format from the content, repeats the structural checks (a stored file
is trusted no more than an upload) and never unpickles: safetensors for state dicts, our own .pt2
reader, torch.jit.load after the archive scan, onnxruntime for ONNX.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workers import zoo
from workers.registry import onnx_format, pt2, torchscript
from workers.registry.detect import ModelFormat, detect
from workers.registry.errors import Rejected, summarize_error
from workers.zoo import InputSpec

# Two samples: a model that only works at batch 1 fails here, not in the middle of a sweep.
TEST_BATCH_SIZE = 2


def load_model(path: Path, fmt: ModelFormat | str, architecture: str = "") -> Any:
    """A callable model on the CPU in eval mode: torch.Tensor batch in, tensor (or tuple) out.

    Raises Rejected when the file is not what fmt says or cannot be loaded safely."""
    fmt = ModelFormat(fmt)
    detected = detect(path)
    if detected.format is not fmt:
        raise Rejected("wrong format", f"the stored file is {detected.label}, not {fmt.value}")
    if fmt is ModelFormat.SAFETENSORS:
        return _load_state_dict(path, architecture)
    if fmt is ModelFormat.TORCHSCRIPT:
        return torchscript.load_module(path, detected.zip_root)
    if fmt is ModelFormat.PT2:
        try:
            return pt2.load_program(path, detected.zip_root)
        except Rejected:
            raise
        except Exception as exc:
            raise Rejected(
                "invalid model", f"the exported program does not deserialize: {summarize_error(exc)}"
            ) from None
    return onnx_format.load_session(path)


def _load_state_dict(path: Path, architecture: str) -> Any:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    model = zoo.get(architecture).build()
    try:
        state = load_file(str(path), device="cpu")
        model.load_state_dict(state, strict=True)
    except (SafetensorError, RuntimeError) as exc:
        raise Rejected(
            "invalid model", f"the state dict does not load into {architecture}: {summarize_error(exc)}"
        ) from None
    return model.eval()


@dataclass(frozen=True)
class ForwardCheck:
    """What the test forward pass saw: output shapes per output and how long the pass took."""

    output_shapes: list[list[int]]
    forward_ms: float

    def to_json(self) -> dict[str, Any]:
        return {"output_shapes": self.output_shapes, "forward_ms": round(self.forward_ms, 3)}


def validate(path: Path, fmt: ModelFormat | str, architecture: str, input_spec: InputSpec) -> ForwardCheck:
    """Load the model and run one batch made from input_spec; raises Rejected with the reason."""
    import torch

    model = load_model(path, fmt, architecture)
    x = input_spec.make(TEST_BATCH_SIZE, generator=torch.Generator().manual_seed(0))
    started = time.perf_counter()
    try:
        with torch.inference_mode():
            output = model(x)
    except Exception as exc:
        raise Rejected(
            "input spec does not fit",
            f"the forward pass with a {input_spec.dtype} batch of shape {list(x.shape)} failed: {summarize_error(exc)}",
        ) from None
    forward_ms = (time.perf_counter() - started) * 1000
    outputs = output if isinstance(output, tuple | list) else (output,)
    shapes = []
    for out in outputs:
        if not isinstance(out, torch.Tensor):
            raise Rejected("invalid model", f"the model returned {type(out).__name__}, not tensors")
        if out.dim() == 0 or out.shape[0] != TEST_BATCH_SIZE:
            raise Rejected(
                "input spec does not fit",
                f"a batch of {TEST_BATCH_SIZE} gave an output of shape {list(out.shape)}; the first dimension must be the batch",
            )
        shapes.append(list(out.shape))
    return ForwardCheck(shapes, forward_ms)
