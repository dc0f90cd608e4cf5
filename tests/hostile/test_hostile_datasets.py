"""POST /api/datasets against hostile .npz files, through the real API: a pickle that would run code,
members that inflate past what the zip directory declares, headers that claim more data than the
member holds or than the limit allows, and an encrypted member. Each must answer 400 with the
reason, run nothing, keep nothing, and the bombs must not grow the web process's memory by more
than PEAK_GROWTH_LIMIT_BYTES."""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from dashboard.models import Dataset
from tests.hostile import zipcraft as z
from tests.hostile.tally import TALLY
from tests.hostile.test_hostile_uploads import PEAK_GROWTH_LIMIT_BYTES, bearer, data_dir, peak_growth  # noqa: F401

MIB = 1 << 20
SHAPE = (3, 32, 32)  # SmallResNet's input


def _npy_header(shape: tuple[int, ...], dtype: str = "<f4") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def _labels(n: int = 20) -> z.Entry:
    return z.stored("y.npy", _npy(np.arange(n, dtype=np.int64) % 10))


def _header_then_zeros(name: str, header: bytes, zeros_mib: int, declared: int | None = None) -> z.Entry:
    """A deflated member: a real .npy header, then zeros_mib MiB of zeros, its directory (and local
    header) claiming declared bytes (None: the truth). The zeros are the zipcraft stream's repeated block: after a
    full flush a deflate block depends on nothing before it."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = compressor.compress(header) + compressor.flush(zlib.Z_FULL_FLUSH)
    zeros = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros.compress(bytes(MIB))
    zeros.flush(zlib.Z_FULL_FLUSH)
    block = zeros.compress(bytes(MIB)) + zeros.flush(zlib.Z_FULL_FLUSH)
    end = zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    crc = zlib.crc32(header)
    for _ in range(zeros_mib):
        crc = zlib.crc32(bytes(MIB), crc)
    payload = head + block * zeros_mib + end
    return z.Entry(
        name, payload, z.zipfile.ZIP_DEFLATED, crc, len(header) + zeros_mib * MIB, local_size=declared,
        directory_size=declared,
    )  # fmt: skip


class Evil:
    """Unpickling this creates the marker file: proof that something ran the pickle."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@dataclass(frozen=True)
class Case:
    id: str
    make: Callable[[Path], bytes]
    error: str
    bomb: bool = False


def _pickled_x(marker: Path) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, x=np.array([Evil(marker)] * 20, dtype=object), y=np.arange(20) % 10)
    return buffer.getvalue()


def _lying_bomb(marker: Path) -> bytes:
    # The header says 20 images (240 KiB); the member inflates to 1 GiB while claiming 240 KiB:
    # reading stops at the declared size, and zipfile's CRC check names the member corrupt.
    header = _npy_header((20, *SHAPE))
    declared = len(header) + 20 * 3 * 32 * 32 * 4
    return z.build([_header_then_zeros("x.npy", header, 1024, declared), _labels()])


def _header_claims_more(marker: Path) -> bytes:
    # The header claims 1M images; the member (truthfully) holds 1 MiB.
    return z.build([_header_then_zeros("x.npy", _npy_header((1_000_000, *SHAPE)), 1), _labels()])


def _truthful_but_huge(marker: Path) -> bytes:
    # 1 GiB of zeros, declared as such: over the 256 MiB limit, refused from the directory alone.
    header = _npy_header((87381, *SHAPE))
    size = len(header) + 87381 * 3 * 32 * 32 * 4
    return z.build([_header_then_zeros("x.npy", header, (size - len(header)) // MIB), _labels()])


def _encrypted(marker: Path) -> bytes:
    entry = z.stored("x.npy", _npy(np.zeros((20, *SHAPE), dtype=np.float32)))
    return z.build([z.dataclasses.replace(entry, flags=0x1), _labels()])


CASES = [
    Case("x is a pickle that would run code", _pickled_x, "x must be floats, not object"),
    Case(
        "x.npy inflating to 1 GiB past its declared size",
        _lying_bomb,
        "is corrupt: Bad CRC-32",
        bomb=True,
    ),
    Case("x.npy header claims a million images", _header_claims_more, "claims shape [1000000, 3, 32, 32]"),
    Case("x.npy truthfully 1 GiB", _truthful_but_huge, "at most 268,435,456 are accepted", bomb=True),
    Case("x.npy encrypted", _encrypted, "is encrypted"),
]


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_data_set_is_refused_and_leaves_nothing(case: Case, client, bearer, data_dir) -> None:  # noqa: F811
    marker = data_dir / "pwned"
    data = case.make(marker)
    body = {"file": SimpleUploadedFile("set.npz", data), "model": "SmallResNet", "name": "hostile"}

    def post():
        return client.post("/api/datasets", body, **bearer)

    try:
        if case.bomb:
            response, traced_bytes, rss_bytes = peak_growth(post)
            TALLY.peak_growth_bytes[f"dataset: {case.id}"] = max(traced_bytes, rss_bytes)
        else:
            response = post()
    except BaseException:
        TALLY.record(f"dataset: {case.id}", None)
        raise
    TALLY.record(f"dataset: {case.id}", response.status_code)

    assert response.status_code == 400, response.content[:500]
    assert case.error in response.json()["error"], response.json()["error"]
    assert not marker.exists(), "the payload ran"
    assert Dataset.objects.count() == 0
    assert [p for p in (data_dir / "datasets").rglob("*") if p.is_file()] == []
    if case.bomb:
        assert traced_bytes < PEAK_GROWTH_LIMIT_BYTES, f"Python allocations peaked at {traced_bytes} bytes"
        assert rss_bytes < PEAK_GROWTH_LIMIT_BYTES, f"resident memory grew by {rss_bytes} bytes"
