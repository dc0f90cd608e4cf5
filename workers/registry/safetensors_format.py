"""safetensors state dicts: the header read in plain Python, and a strict match against a zoo architecture.

A safetensors file is an 8-byte little-endian header length N, N bytes of JSON
({"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}), then the tensor
bytes. Nothing in it is code; we still check that the offsets tile the data exactly, so a file cut
short is named "truncated" here and not a puzzling error at load time.
"""

from __future__ import annotations

import functools
import importlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

from workers import zoo
from workers.registry.detect import SAFETENSORS_MAX_HEADER_BYTES
from workers.registry.errors import Rejected

DTYPE_BYTES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1,
    "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1,
}  # fmt: skip


# The JSON header is parsed in the web request, at ~10x its size in memory; a header lists ~150
# bytes per tensor, so this is room for ~100,000 tensors (the format's own limit is 100 MB).
MAX_HEADER_READ_BYTES = 16 << 20


@dataclass(frozen=True)
class TensorInfo:
    dtype: str
    shape: tuple[int, ...]


def read_header(path: Path) -> dict[str, TensorInfo]:
    """The tensors a safetensors file declares; raises Rejected("truncated" or "invalid model")."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise Rejected(
                "truncated", f"a safetensors file needs an 8-byte header length; this one has {size} bytes"
            )
        header_len = int.from_bytes(prefix, "little")
        if header_len > SAFETENSORS_MAX_HEADER_BYTES:
            raise Rejected(
                "invalid model", f"safetensors header of {header_len} bytes is over the 100 MB limit"
            )
        if header_len > MAX_HEADER_READ_BYTES:
            raise Rejected(
                "too large",
                f"safetensors header of {header_len} bytes; at most {MAX_HEADER_READ_BYTES} are read",
            )
        if 8 + header_len > size:
            raise Rejected(
                "truncated",
                f"the safetensors header needs {header_len} bytes but the file ends after {size - 8}",
            )
        raw = handle.read(header_len)
    try:
        header = json.loads(raw)
    except ValueError as exc:
        raise Rejected("invalid model", f"the safetensors header is not valid JSON: {exc}") from None
    if not isinstance(header, dict):
        raise Rejected("invalid model", "the safetensors header is not a JSON object")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise Rejected("invalid model", "safetensors __metadata__ must map names to strings")
    tensors: dict[str, TensorInfo] = {}
    spans: list[tuple[int, int, str]] = []
    for name, entry in header.items():
        info, begin, end = _parse_entry(name, entry)
        tensors[name] = info
        spans.append((begin, end, name))
    data_bytes = size - 8 - header_len
    position = 0
    for begin, end, name in sorted(spans):
        if begin != position:
            raise Rejected(
                "invalid model",
                f"tensor {name!r} starts at byte {begin}, expected {position} (gap or overlap)",
            )
        position = end
    if position > data_bytes:
        raise Rejected(
            "truncated", f"the tensors need {position} bytes of data but the file holds {data_bytes}"
        )
    if position < data_bytes:
        raise Rejected("invalid model", f"{data_bytes - position} bytes follow the last tensor")
    return tensors


def _parse_entry(name: str, entry: object) -> tuple[TensorInfo, int, int]:
    if not isinstance(entry, dict):
        raise Rejected("invalid model", f"safetensors entry {name!r} is not an object")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if dtype not in DTYPE_BYTES:
        raise Rejected("invalid model", f"tensor {name!r} has unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise Rejected("invalid model", f"tensor {name!r} has a bad shape {shape!r}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
        raise Rejected("invalid model", f"tensor {name!r} has bad data_offsets {offsets!r}")
    begin, end = offsets
    if not 0 <= begin <= end or end - begin != math.prod(shape) * DTYPE_BYTES[dtype]:
        raise Rejected("invalid model", f"tensor {name!r}: data_offsets {offsets} do not fit {dtype} {shape}")
    return TensorInfo(dtype, tuple(shape)), begin, end


@functools.cache
def expected_shapes(architecture: str) -> dict[str, tuple[int, ...]]:
    """The state dict keys and shapes of a zoo model, built on the meta device (no memory, no init cost)."""
    import torch

    entry = zoo.get(architecture)
    module_name, _, attribute = entry.factory.partition(":")
    with torch.device("meta"):
        model = getattr(importlib.import_module(module_name), attribute)()
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def check_against_architecture(tensors: dict[str, TensorInfo], architecture: str) -> None:
    """Raises Rejected("invalid model") unless the keys and shapes are exactly the architecture's."""
    expected = expected_shapes(architecture)
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = [
        f"{key} is {list(tensors[key].shape)}, expected {list(expected[key])}"
        for key in sorted(set(expected) & set(tensors))
        if tensors[key].shape != expected[key]
    ]
    problems = []
    if missing:
        problems.append(f"missing keys {_few(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_few(unexpected)}")
    if wrong:
        problems.append(f"wrong shapes: {_few(wrong)}")
    if problems:
        raise Rejected(
            "invalid model",
            f"the state dict does not match the {architecture} architecture: {'; '.join(problems)}",
        )


def _few(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
