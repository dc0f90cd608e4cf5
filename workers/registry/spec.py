"""Settling the input spec of an upload: the one the file records, the one the uploader declares, or both."""

from __future__ import annotations

from dataclasses import dataclass

from workers.registry.errors import Rejected
from workers.zoo import InputSpec


@dataclass(frozen=True)
class GraphInput:
    """The single input a graph declares: ``shape[0]`` is None when the batch dimension is dynamic."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str | None  # "float32", "int64", or None for a dtype an InputSpec cannot describe


def settle_input_spec(graph_input: GraphInput | None, declared: InputSpec | None, what: str) -> InputSpec:
    """The spec to validate and benchmark with; raises Rejected when there is none or they disagree.

    what names the file kind in messages ("the ONNX graph", "the exported program")."""
    if graph_input is not None:
        if graph_input.shape and graph_input.shape[0] is not None:
            raise Rejected(
                "input spec does not fit",
                f"{what} takes a fixed batch of {graph_input.shape[0]} on input {graph_input.name!r}; "
                "export it with a dynamic batch dimension",
            )
        if declared is not None:
            if graph_input.dtype is not None and declared.dtype != graph_input.dtype:
                raise Rejected(
                    "input spec does not fit",
                    f"{what} takes {graph_input.dtype} on input {graph_input.name!r}, the spec says {declared.dtype}",
                )
            if tuple(declared.shape[1:]) != tuple(graph_input.shape[1:]):
                raise Rejected(
                    "input spec does not fit",
                    f"{what} takes shape {_shape(graph_input.shape)} on input {graph_input.name!r}, "
                    f"the spec says {_shape(declared.shape)}",
                )
            return declared
        if graph_input.dtype == "float32" and all(d is not None for d in graph_input.shape[1:]):
            return InputSpec(shape=graph_input.shape, dtype="float32", low=0.0, high=1.0)
        if graph_input.dtype == "int64":
            raise Rejected(
                "missing information",
                f"{what} takes int64 tokens; give an input spec with their range, e.g. "
                f'{{"shape": {_shape(graph_input.shape)}, "dtype": "int64", "low": 0, "high": <vocabulary size>}}',
            )
    if declared is None:
        raise Rejected(
            "missing information",
            f"{what} does not record its input shape; give an input spec, e.g. "
            '{"shape": [null, 784], "dtype": "float32", "low": 0, "high": 1}',
        )
    return declared


def _shape(shape: tuple[int | None, ...]) -> str:
    return "[" + ", ".join("null" if d is None else str(d) for d in shape) + "]"
