"""The model a pipeline carries from pass to pass, in whichever form the last pass left it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from torch import nn

from workers.passes.declare import Form


@dataclass(frozen=True)
class Candidate:
    """``module`` is what the harness times: any ``nn.Module`` taking the model's input batch.

    ``form`` says what the next pass can work on: "torch" (``module`` is a plain torch module
    that can be traced, pruned, quantized or exported) or "onnx" (``onnx_bytes`` is the graph and
    ``module`` runs it through ONNX Runtime). ``backend`` names what actually executes, e.g.
    "torch eager fp32", "onnxruntime CPUExecutionProvider int8 (dynamic)".
    """

    module: nn.Module
    form: Form = "torch"
    backend: str = "torch eager"
    onnx_bytes: bytes | None = None
    passes: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def after(self, pass_name: str, **changes: Any) -> Candidate:
        return replace(self, passes=(*self.passes, pass_name), **changes)
