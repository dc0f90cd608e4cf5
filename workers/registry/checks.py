"""The cheap checks of an upload, run in the web request before anything is stored.

Format (from the content, against what the uploader claims), size, structure (archive entries,
pickle globals, source scan, safetensors offsets, ONNX checker), the state dict against its zoo
architecture, and the input spec. The test forward pass is not here: it runs in the worker
(``loading.validate``), because it loads torch and the model and can take as long as the model does.

Only the safetensors key/shape match imports torch (to build the architecture on the meta device).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from workers import zoo
from workers.registry import onnx_format, pt2, safetensors_format, torchscript
from workers.registry.detect import ModelFormat, resolve_format
from workers.registry.errors import Rejected
from workers.registry.spec import check_input_size, settle_input_spec
from workers.zoo import InputSpec


@dataclass(frozen=True)
class CheckedUpload:
    """An upload that passed the cheap checks: its format, the zoo architecture (safetensors) and input spec."""

    format: ModelFormat
    architecture: str
    input_spec: InputSpec


def check_upload(
    path: Path,
    *,
    filename: str,
    max_bytes: int,
    declared_format: str | None = None,
    architecture: str | None = None,
    input_spec: InputSpec | None = None,
) -> CheckedUpload:
    """Everything about the file at path that can be checked without running it; raises Rejected."""
    try:
        checked = _check_file(
            path,
            filename=filename,
            max_bytes=max_bytes,
            declared_format=declared_format,
            architecture=architecture,
            input_spec=input_spec,
        )
    except RecursionError:  # JSON (a .pt2 program, a safetensors header) nested thousands deep
        raise Rejected("invalid model", "the file's structure is nested too deeply to check") from None
    check_input_size(checked.input_spec)  # declared or recorded by the file, it must be runnable
    return checked


def _check_file(
    path: Path,
    *,
    filename: str,
    max_bytes: int,
    declared_format: str | None = None,
    architecture: str | None = None,
    input_spec: InputSpec | None = None,
) -> CheckedUpload:
    size = path.stat().st_size
    if size > max_bytes:
        raise Rejected("too large", f"{size} bytes is over the upload limit of {max_bytes} bytes")
    detected = resolve_format(path, filename, declared_format)
    fmt = detected.format
    assert fmt is not None  # resolve_format refuses everything else
    if architecture and fmt is not ModelFormat.SAFETENSORS:
        raise Rejected(
            "wrong format", f"an architecture is only given with safetensors state dicts, not {fmt.value}"
        )
    if fmt is ModelFormat.SAFETENSORS:
        if not architecture:
            raise Rejected(
                "missing information",
                f"a safetensors state dict needs its architecture, one of the zoo's: {', '.join(zoo.names())}",
            )
        try:
            entry = zoo.get(architecture)
        except zoo.UnknownModel as exc:
            raise Rejected("missing information", str(exc)) from None
        tensors = safetensors_format.read_header(path)
        safetensors_format.check_against_architecture(tensors, architecture)
        return CheckedUpload(fmt, architecture, input_spec or entry.input_spec)
    if fmt is ModelFormat.ONNX:
        graph_input = onnx_format.check_model(path)
        return CheckedUpload(fmt, "", settle_input_spec(graph_input, input_spec, "the ONNX graph"))
    if fmt is ModelFormat.PT2:
        archive = pt2.check_archive(path, detected.zip_root)
        return CheckedUpload(
            fmt, "", settle_input_spec(archive.graph_input, input_spec, "the exported program")
        )
    torchscript.check_archive(path, detected.zip_root)
    return CheckedUpload(fmt, "", settle_input_spec(None, input_spec, "a TorchScript archive"))
