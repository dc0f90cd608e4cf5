"""Zip archives written byte by byte, so that they can lie: sizes in the local header that differ
from the central directory's, an end record with the wrong entry count, entries that inflate to GiBs.

``zipfile`` cannot write these (it computes every size itself), and it would have to inflate a
4 GiB entry to write it. Here a deflated run of zeros is built from one compressed MiB repeated:
after a full flush a deflate block depends on no earlier data, so the same bytes can follow each
other as often as needed (4 GiB of zeros is ~4 MB compressed, built in about a second).
"""

from __future__ import annotations

import dataclasses
import functools
import io
import struct
import zipfile
import zlib
from dataclasses import dataclass

MIB = 1 << 20


@dataclass(frozen=True)
class Entry:
    """One zip entry: payload as it lies in the archive, and the sizes each header declares."""

    name: str
    payload: bytes
    method: int  # zipfile.ZIP_STORED or ZIP_DEFLATED
    crc: int
    size: int  # the true inflated size
    local_size: int | None = None  # what the local header claims (default: the truth)
    directory_size: int | None = None  # what the central directory claims (default: the truth)
    flags: int = 0  # 0x800: the name is UTF-8


def stored(name: str, content: bytes) -> Entry:
    return Entry(name, content, zipfile.ZIP_STORED, zlib.crc32(content), len(content))


def deflated(name: str, content: bytes) -> Entry:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = compressor.compress(content) + compressor.flush()
    return Entry(name, payload, zipfile.ZIP_DEFLATED, zlib.crc32(content), len(content))


@functools.cache
def _zeros_stream(size_mib: int) -> tuple[bytes, int]:
    """A raw deflate stream of size_mib MiB of zeros, and its CRC-32."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(MIB)
    first = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeat = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH) == repeat
    stream = first + repeat * (size_mib - 1) + compressor.flush()
    crc = 0
    for _ in range(size_mib):
        crc = zlib.crc32(chunk, crc)
    return stream, crc


def zeros_bomb(name: str, size_mib: int, **claims: int) -> Entry:
    """An entry deflating to size_mib MiB of zeros (claims: local_size= / directory_size= lies)."""
    stream, crc = _zeros_stream(size_mib)
    return Entry(name, stream, zipfile.ZIP_DEFLATED, crc, size_mib * MIB, **claims)


def build(entries: list[Entry], *, declared_count: int | None = None) -> bytes:
    """The archive's bytes; declared_count puts another entry count in the end record."""
    out = io.BytesIO()
    directory = io.BytesIO()
    for entry in entries:
        offset = out.tell()
        name = entry.name.encode("utf-8", "surrogateescape")  # "\udcff" writes the byte 0xff
        local_size = entry.size if entry.local_size is None else entry.local_size
        directory_size = entry.size if entry.directory_size is None else entry.directory_size
        out.write(
            struct.pack(
                "<4s5H3I2H",
                b"PK\x03\x04",
                20,
                entry.flags,
                entry.method,
                0,
                0x21,
                entry.crc,
                len(entry.payload),
                local_size,
                len(name),
                0,
            )  # fmt: skip
        )
        out.write(name)
        out.write(entry.payload)
        directory.write(
            struct.pack(
                "<4s6H3I5H2I",
                b"PK\x01\x02",
                20,
                20,
                entry.flags,
                entry.method,
                0,
                0x21,
                entry.crc,
                len(entry.payload),
                directory_size,
                len(name),
                0,
                0,
                0,
                0,
                0,
                offset,
            )  # fmt: skip
        )
        directory.write(name)
    start = out.tell()
    out.write(directory.getvalue())
    count = len(entries) if declared_count is None else declared_count
    out.write(struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, count, count, len(directory.getvalue()), start, 0))
    return out.getvalue()


def entries_of(archive: bytes) -> list[Entry]:
    """A real archive's entries, re-read (all stored as they were, deflated ones re-deflated)."""
    with zipfile.ZipFile(io.BytesIO(archive)) as source:
        return [
            (deflated if info.compress_type == zipfile.ZIP_DEFLATED else stored)(
                info.filename, source.read(info)
            )
            for info in source.infolist()
        ]


def replace(entries: list[Entry], suffix: str, new: Entry) -> list[Entry]:
    """entries with the one whose name ends with suffix swapped for new (named like the old one)."""
    out = []
    for entry in entries:
        out.append(dataclasses.replace(new, name=entry.name) if entry.name.endswith(suffix) else entry)
    return out
