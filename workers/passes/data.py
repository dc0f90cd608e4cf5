"""Labeled data sets for the passes: the zoo's digits, or a user's ``.npz`` with ``x`` and ``y``."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch

from workers.passes.context import LabeledData
from workers.zoo import InputSpec

TEST_FRACTION = 0.2
MAX_NPZ_SAMPLES = 1_000_000
MAX_NPZ_BYTES = 256 << 20  # x and y inflated, together; the web process holds them while checking
NPY_HEADER_MAX_BYTES = 10_000  # numpy's own default cap on a .npy header


def digits_for_model(entry) -> LabeledData:
    """The digits split the zoo trains and evaluates on (same held-out 360 images everywhere)."""
    from workers.zoo.training import digits_for

    digits = digits_for(entry)
    train_x, train_y = digits.train.tensors
    test_x, test_y = digits.test.tensors
    return LabeledData(train_x, train_y, test_x, test_y, name="digits")


class InvalidDataset(ValueError):
    """An uploaded data set we refuse, with the reason in words."""


def load_npz(
    path: Path,
    input_spec: InputSpec,
    num_classes: int | None = None,
    seed: int = 0,
    max_bytes: int = MAX_NPZ_BYTES,
) -> LabeledData:
    """A ``.npz`` of ``x`` (float, shape [N, *input]) and ``y`` (int labels, shape [N]), checked as
    read_npz checks it, then split 80/20 (shuffled with ``seed``) into train and held-out test."""
    x, y = read_npz(path, input_spec, num_classes, max_bytes)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    cut = max(1, int(len(y) * TEST_FRACTION))
    xt, yt = torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.int64))
    return LabeledData(xt[order[cut:]], yt[order[cut:]], xt[order[:cut]], yt[order[:cut]], name=path.stem)


def read_npz(
    path: Path, input_spec: InputSpec, num_classes: int | None = None, max_bytes: int = MAX_NPZ_BYTES
) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of a ``.npz``, read-only, or InvalidDataset with the reason.

    Read without pickle and with bounded memory: the zip is opened through
    the registry's SafeZip (entry count, directory size, encryption and compression checked; entries
    inflated in chunks that stop at the cap, so a member that lies about its size costs one chunk),
    each ``.npy`` header is read and checked (dtype, shape, bytes it claims) before its data is, and
    ``x`` and ``y`` together may inflate to at most ``max_bytes``. Then the arrays are checked: shapes
    match the model's input spec, no NaN or inf, labels in range."""
    from workers.registry import Rejected
    from workers.registry.zips import SafeZip

    with Path(path).open("rb") as handle:
        if handle.read(4) not in (b"PK\x03\x04", b"PK\x05\x06"):
            raise InvalidDataset("not an .npz file (numpy.savez writes a zip archive; this is not one)")
    try:
        with SafeZip(
            Path(path), "the .npz", max_total_read_bytes=max_bytes + 2 * NPY_HEADER_MAX_BYTES
        ) as archive:
            missing = [n for n in ("x.npy", "y.npy") if n not in archive.by_name]
            if missing:
                held = ", ".join(sorted(n.removesuffix(".npy") for n in archive.by_name)[:10]) or "none"
                raise InvalidDataset(f"the .npz must hold arrays named x and y; it has {held}")
            declared = sum(archive.by_name[n].file_size for n in ("x.npy", "y.npy"))
            if declared > max_bytes:
                raise InvalidDataset(
                    f"x and y together are {declared:,} bytes; at most {max_bytes:,} are accepted"
                )
            x = _read_npy(archive, "x", max_bytes, kinds="f", wanted="floats")
            y = _read_npy(archive, "y", max_bytes, kinds="iu", wanted="integer class labels")
    except Rejected as exc:
        raise InvalidDataset(exc.detail) from None
    expected = tuple(int(d) for d in input_spec.shape[1:] if d is not None)
    if x.ndim != 1 + len(expected) or tuple(x.shape[1:]) != expected:
        raise InvalidDataset(
            f"x has shape {list(x.shape)}; the model takes [N, {', '.join(map(str, expected))}]"
        )
    if y.shape != (x.shape[0],):
        raise InvalidDataset(f"y has shape {list(y.shape)}; expected one label per row of x: [{x.shape[0]}]")
    if not 10 <= x.shape[0] <= MAX_NPZ_SAMPLES:
        raise InvalidDataset(f"{x.shape[0]} samples; between 10 and {MAX_NPZ_SAMPLES:,} are accepted")
    if not np.isfinite(x).all():
        raise InvalidDataset("x must be finite floats (no NaN or inf)")
    if y.min() < 0 or (num_classes is not None and y.max() >= num_classes):
        top = f" and below {num_classes} (the model's outputs)" if num_classes is not None else ""
        raise InvalidDataset(f"labels must be >= 0{top}; found {int(y.min())} to {int(y.max())}")
    return x, y


def _read_npy(archive, name: str, max_bytes: int, *, kinds: str, wanted: str) -> np.ndarray:
    """One array of the archive: its header read first (at most NPY_HEADER_MAX_BYTES) and checked
    (dtype kind, no objects, the data it claims = the member's declared size, within max_bytes),
    then the member inflated with that cap and parsed by numpy without pickle."""
    info = archive.by_name[f"{name}.npy"]
    head = io.BytesIO(archive.head(info, NPY_HEADER_MAX_BYTES))
    try:
        version = np.lib.format.read_magic(head)
        read_header = (
            np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        )
        shape, fortran, dtype = read_header(head, max_header_size=NPY_HEADER_MAX_BYTES)
    except (ValueError, TypeError, SyntaxError, EOFError) as exc:
        raise InvalidDataset(f"{name} is not a readable .npy array: {exc}"[:300]) from None
    if dtype.hasobject or dtype.kind not in kinds:
        raise InvalidDataset(f"{name} must be {wanted}, not {dtype}")
    data_bytes = math.prod(shape) * dtype.itemsize
    if data_bytes > max_bytes:
        raise InvalidDataset(
            f"{name} claims shape {list(shape)}: {data_bytes:,} bytes; at most {max_bytes:,} are accepted"
        )
    if head.tell() + data_bytes != info.file_size:
        raise InvalidDataset(
            f"{name} claims shape {list(shape)} ({data_bytes:,} bytes of data) but its member holds "
            f"{info.file_size - head.tell():,}"
        )
    raw = archive.read(info, info.file_size)
    # A view over the inflated bytes, not np.load's copy of them: half the memory for the largest
    # data sets. Nothing here can unpickle: object dtypes were refused from the header above.
    return np.frombuffer(raw, dtype=dtype, count=math.prod(shape), offset=head.tell()).reshape(
        shape, order="F" if fortran else "C"
    )
