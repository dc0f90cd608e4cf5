"""Settling the input spec of an upload: the one the file records, the one the uploader declares, or both."""

from __future__ import annotations

import math
from dataclasses import dataclass

from workers.registry.errors import Rejected
from workers.zoo import InputSpec

# One sample of the input, at most: 16 Mi elements is 64 MiB of float32 (a 3x2048x2048 image is
# 12.6 Mi). The benchmark multiplies it by batch sizes up to 4096, and [null, 2**26] was accepted.
MAX_INPUT_ELEMENTS = 1 << 24
MAX_INPUT_DIMS = 8


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


def check_input_size(spec: InputSpec) -> InputSpec:
    """The spec, unless one sample is too large or its value range is not finite; raises Rejected."""
    if len(spec.shape) > MAX_INPUT_DIMS:
        raise Rejected(
            "input spec does not fit", f"the input has {len(spec.shape)} dimensions; at most {MAX_INPUT_DIMS}"
        )
    elements = math.prod(d for d in spec.shape[1:] if d is not None)
    if elements > MAX_INPUT_ELEMENTS:
        raise Rejected(
            "input spec does not fit",
            f"one sample of shape {_shape(spec.shape)[:80]} has {elements} elements; "
            f"at most {MAX_INPUT_ELEMENTS} are accepted",
        )
    if not (math.isfinite(spec.low) and math.isfinite(spec.high)):
        raise Rejected(
            "input spec does not fit", f"low and high must be finite, not [{spec.low}, {spec.high})"
        )
    return spec
