"""What a file is, read from its bytes (magic numbers and archive entries), never from its name.

Accepted formats:
  pt2          a torch.export archive: a zip whose entries hold ``archive_format`` = "pt2" and ``models/*.json``
  torchscript  a torch.jit.save archive: a zip with ``data.pkl`` and ``code/``
  onnx         an ONNX ModelProto (protobuf; ir_version is field 1, written first)
  safetensors  8-byte little-endian header length, then a JSON header starting with "{"

Everything else is named as well as we can ("a Python pickle", "a PNG image", ...) so that a
refusal says what was actually sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from workers.registry.errors import Rejected
from workers.registry.zips import SafeZip


class ModelFormat(StrEnum):
    PT2 = "pt2"
    TORCHSCRIPT = "torchscript"
    ONNX = "onnx"
    SAFETENSORS = "safetensors"


FORMAT_LABELS = {
    ModelFormat.PT2: "a torch.export program (.pt2)",
    ModelFormat.TORCHSCRIPT: "a TorchScript archive (.pt)",
    ModelFormat.ONNX: "an ONNX model (.onnx)",
    ModelFormat.SAFETENSORS: "a safetensors state dict (.safetensors)",
}

EXTENSIONS = {
    ".pt2": ModelFormat.PT2,
    ".pt": ModelFormat.TORCHSCRIPT,
    ".pth": ModelFormat.TORCHSCRIPT,
    ".jit": ModelFormat.TORCHSCRIPT,
    ".torchscript": ModelFormat.TORCHSCRIPT,
    ".onnx": ModelFormat.ONNX,
    ".safetensors": ModelFormat.SAFETENSORS,
}

# Largest JSON header a safetensors file may have (the safetensors library's own limit).
SAFETENSORS_MAX_HEADER_BYTES = 100_000_000

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
# Tags of ModelProto's fields 2..9, 14, 15 and 16 (the byte after ir_version's varint).
_ONNX_SECOND_FIELD_TAGS = frozenset({0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42, 0x72, 0x7A, 0x82})
_OTHER_MAGIC = [
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip file"),
    (b"\x93NUMPY", "a NumPy array (.npy)"),
    (b"\x89HDF", "an HDF5 file"),
    (b"7z\xbc\xaf", "a 7-zip archive"),
]


@dataclass(frozen=True)
class Detected:
    """The content's kind: ``format`` when it is one we accept, else None and a ``label`` saying what it is."""

    format: ModelFormat | None
    label: str
    zip_root: str = ""  # the archive's top directory ("name/") for pt2 and TorchScript


def detect(path: Path) -> Detected:
    """Classify the file at path; raises Rejected("truncated") for a zip cut before its end record."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(4096)
    if size == 0:
        return Detected(None, "an empty file")
    if head.startswith(_ZIP_MAGIC):
        return _detect_zip(path)
    if _looks_like_safetensors(head):
        return Detected(ModelFormat.SAFETENSORS, FORMAT_LABELS[ModelFormat.SAFETENSORS])
    if len(head) >= 3 and head[0] == 0x08 and 1 <= head[1] <= 0x7F and head[2] in _ONNX_SECOND_FIELD_TAGS:
        return Detected(ModelFormat.ONNX, FORMAT_LABELS[ModelFormat.ONNX])
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return Detected(None, "a Python pickle (never loaded here: unpickling runs code)")
    for magic, label in _OTHER_MAGIC:
        if head.startswith(magic):
            return Detected(None, label)
    if _is_text(head):
        return Detected(None, "a text file")
    return Detected(None, "unrecognized binary data")


def _looks_like_safetensors(head: bytes) -> bool:
    if len(head) < 9:
        return False
    header_len = int.from_bytes(head[:8], "little")
    return 2 <= header_len <= SAFETENSORS_MAX_HEADER_BYTES and head[8:9] == b"{"


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the 4 KiB window is still text.
        return exc.start >= len(head) - 3
    return True


def _detect_zip(path: Path) -> Detected:
    # Only the directory and the first bytes of archive_format: reading that entry whole let a
    # 4 MB upload inflate 4 GiB here, before any check on compression could refuse it.
    with SafeZip(path, "the file") as archive:
        names = archive.names()
        root = _single_root(names)
        archive_format = b""
        if root and f"{root}archive_format" in archive.by_name:
            archive_format = archive.head(archive.by_name[f"{root}archive_format"], 16)
    if root is None:
        return Detected(None, "a zip archive that is not a PyTorch archive (no single top directory)")
    if archive_format.strip() == b"pt2" or any(
        n.startswith(f"{root}models/") and n.endswith(".json") for n in names
    ):
        return Detected(ModelFormat.PT2, FORMAT_LABELS[ModelFormat.PT2], root)
    if f"{root}data.pkl" in names and any(n.startswith(f"{root}code/") for n in names):
        return Detected(ModelFormat.TORCHSCRIPT, FORMAT_LABELS[ModelFormat.TORCHSCRIPT], root)
    if f"{root}data.pkl" in names:
        return Detected(
            None,
            "a torch.save checkpoint (a pickle, never loaded here: unpickling runs code; "
            "save the state dict with safetensors instead)",
            root,
        )
    return Detected(None, "a zip archive that is neither a torch.export nor a TorchScript archive", root)


def _single_root(names: list[str]) -> str | None:
    """ "root/" when every entry lies under one top directory, as in every PyTorch archive."""
    roots = {name.split("/", 1)[0] for name in names if "/" in name}
    if len(roots) != 1 or any("/" not in name for name in names):
        return None
    return f"{roots.pop()}/"


def claimed_format(filename: str, declared: str | None) -> tuple[ModelFormat | None, str]:
    """The format the uploader claims and where the claim comes from ("the format field", "the
    extension .onnx"); (None, "") when neither says. Raises Rejected for an unknown declared format."""
    if declared:
        try:
            return ModelFormat(declared.strip().lower()), f'the format field "{declared}"'
        except ValueError:
            known = ", ".join(f.value for f in ModelFormat)
            raise Rejected("wrong format", f"unknown format {declared!r}; use one of {known}") from None
    suffix = Path(filename).suffix.lower()
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix], f"the extension {suffix}"
    return None, ""


def resolve_format(path: Path, filename: str, declared: str | None) -> Detected:
    """The file's accepted format, checked against what the uploader claims.

    Raises Rejected("wrong format") naming both the claim and the content when they disagree or
    the content is not a format we accept."""
    claim, source = claimed_format(filename, declared)
    detected = detect(path)
    if detected.format is None:
        claimed = f"{source} claims {FORMAT_LABELS[claim]}, but " if claim else ""
        raise Rejected("wrong format", f"{claimed}the content is {detected.label}")
    if claim is not None and claim != detected.format:
        raise Rejected(
            "wrong format", f"{source} claims {FORMAT_LABELS[claim]}, but the content is {detected.label}"
        )
    return detected
