"""ONNX models: parsed and checked with ``onnx`` (no code in the format), run with onnxruntime on the CPU.

Refused: tensors stored as external data (their ``location`` is a path the loader would read from
this server's disk), operator domains other than the standard ones (custom ops need native
libraries), and graphs with more or fewer than one input.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from workers.registry.errors import Rejected, summarize_error
from workers.registry.spec import GraphInput

if TYPE_CHECKING:
    import onnx
    from torch import nn

ALLOWED_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft"})
_ELEM_TYPES = {1: "float32", 7: "int64"}  # onnx.TensorProto.FLOAT, INT64


def check_model(path: Path) -> GraphInput:
    """Parse, vet and run the ONNX checker; returns the graph's input. Raises Rejected."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise Rejected(
            "truncated", f"the ONNX protobuf does not parse (cut short or corrupt): {exc}"
        ) from None
    _check_no_external_data(model)
    domains = {op.domain for op in model.opset_import} | _node_domains(model.graph)
    for function in model.functions:
        domains |= _node_domains_of(function.node)
    local_functions = {function.domain for function in model.functions}
    unknown = sorted(domains - ALLOWED_DOMAINS - local_functions)
    if unknown:
        raise Rejected(
            "unsafe content", f"custom operator domains {unknown} need native libraries; not accepted"
        )
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise Rejected("invalid model", f"the ONNX checker refuses it: {summarize_error(exc)}") from None
    return _graph_input(model)


def _check_no_external_data(model: onnx.ModelProto) -> None:
    import onnx
    from onnx.external_data_helper import _get_all_tensors

    for tensor in _get_all_tensors(model):
        if tensor.data_location == onnx.TensorProto.EXTERNAL or tensor.external_data:
            raise Rejected(
                "unsafe content",
                f"tensor {tensor.name!r} is stored as external data; upload a single self-contained .onnx file",
            )


def _node_domains(graph: Any) -> set[str]:
    return _node_domains_of(graph.node)


def _node_domains_of(nodes: Any) -> set[str]:
    domains: set[str] = set()
    for node in nodes:
        domains.add(node.domain)
        for attribute in node.attribute:
            for subgraph in [attribute.g, *attribute.graphs]:
                if subgraph is not None and len(subgraph.node):
                    domains |= _node_domains(subgraph)
    return domains


def _graph_input(model: onnx.ModelProto) -> GraphInput:
    initializers = {init.name for init in model.graph.initializer}
    inputs = [value for value in model.graph.input if value.name not in initializers]
    if len(inputs) != 1:
        raise Rejected(
            "input spec does not fit",
            f"the ONNX graph takes {len(inputs)} inputs; only one-input models are accepted",
        )
    value = inputs[0]
    tensor_type = value.type.tensor_type
    dims: list[int | None] = [
        dim.dim_value if dim.HasField("dim_value") and dim.dim_value > 0 else None
        for dim in tensor_type.shape.dim
    ]
    return GraphInput(name=value.name, shape=tuple(dims), dtype=_ELEM_TYPES.get(tensor_type.elem_type))


class OnnxModule:
    """An onnxruntime session behind a torch-like call: tensor in, tensor (or tuple) out, on the CPU."""

    def __init__(self, path: Path) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only: the worker log is not the place for ORT's notes
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        # The benchmark harness rebuilds the session with its own threads and graph level from this.
        self.onnx_path = path

    def __call__(self, x: Any) -> Any:
        import torch

        outputs = self.session.run(None, {self.input_name: x.detach().cpu().numpy()})
        tensors = tuple(torch.from_numpy(output) for output in outputs)
        return tensors[0] if len(tensors) == 1 else tensors

    def eval(self) -> OnnxModule:
        return self

    def to(self, device: Any = None, dtype: Any = None) -> OnnxModule:
        """The harness moves models with .to(device, dtype); a CPU session in fp32 is all this runs."""
        import torch

        if device is not None and torch.device(device).type != "cpu":
            raise ValueError(
                "ONNX models run on the CPU here (onnxruntime's CPU provider); choose device cpu"
            )
        if dtype is not None and dtype != torch.float32:
            raise ValueError("ONNX models run in the precision they were exported in; choose precision fp32")
        return self


def load_session(path: Path) -> nn.Module:
    """check_model again (the worker trusts no earlier check), then an ORT session wrapped as OnnxModule."""
    check_model(path)
    try:
        return OnnxModule(path)  # type: ignore[return-value]
    except Exception as exc:
        raise Rejected("invalid model", f"onnxruntime cannot load it: {summarize_error(exc)}") from None
