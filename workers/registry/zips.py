"""Reading uploaded zip archives (.pt2, TorchScript) with bounded memory and time.

A zip says how big its entries are in its central directory, and nothing forces it to tell the
truth: a 4 MB upload can deflate to 4 GiB, and ``ZipFile.read`` inflates the whole entry at once
(we measured 8.5 GB in the web process for a 4 GiB entry, 133 MB for a 50 MB one whose directory
claimed 100 bytes). So before ``zipfile`` parses anything, the end record's entry count and directory
size are checked; every entry's declared size is checked before it is read; and entries are read
in 64 KiB chunks that stop at the cap, so an entry that inflates past its declared size costs one
chunk, and zipfile's CRC check names it corrupt. A per-archive budget bounds the total inflated by
the checks, so ten thousand small bombs cost no more than one.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

from workers.registry.errors import Rejected

# More than any PyTorch archive we know of (one entry per tensor; a 70B-parameter LLM has ~800).
MAX_ENTRIES = 4096
# The central directory is parsed into memory by zipfile: 46 bytes plus the name per entry.
MAX_DIRECTORY_BYTES = 2 << 20
# What the checks of one archive may read (inflate) in all, across its entries.
MAX_TOTAL_READ_BYTES = 128 << 20
CHUNK_BYTES = 64 << 10

_EOCD = b"PK\x05\x06"
_EOCD64_LOCATOR = b"PK\x06\x07"
_EOCD64 = b"PK\x06\x06"
_EOCD_BYTES = 22
_MAX_COMMENT_BYTES = 0xFFFF


class SafeZip:
    """A zip archive whose entries can only be read with a size cap; raises Rejected, never BadZipFile.

    source is a path or the archive's bytes (an archive nested in another one). max_total_read_bytes
    bounds what all reads of this archive may inflate together (a data set's arrays need more than
    a model archive's checks)."""

    def __init__(
        self,
        source: Path | bytes,
        what: str = "the archive",
        *,
        max_total_read_bytes: int = MAX_TOTAL_READ_BYTES,
    ) -> None:
        self.what = what
        self._read_bytes = 0
        self._budget_bytes = max_total_read_bytes
        try:
            if isinstance(source, bytes):
                _check_end_record(io.BytesIO(source), what)
                self.archive = zipfile.ZipFile(io.BytesIO(source))
            else:
                with Path(source).open("rb") as handle:
                    _check_end_record(handle, what)
                self.archive = zipfile.ZipFile(source)
        except zipfile.BadZipFile as exc:
            raise Rejected(
                "truncated", f"{what} starts like a zip archive but cannot be read: {exc}"
            ) from None
        except (ValueError, EOFError, OSError, struct.error, NotImplementedError) as exc:
            # e.g. a name flagged UTF-8 that is not (UnicodeDecodeError), a directory past the end
            raise Rejected("invalid model", f"{what} has a corrupt zip directory: {exc}") from None
        self.infos = self.archive.infolist()
        if len(self.infos) > MAX_ENTRIES:
            self.close()
            raise Rejected(
                "invalid model", f"{what} has {len(self.infos)} entries; at most {MAX_ENTRIES} are accepted"
            )
        for info in self.infos:
            if _escapes(info.filename):
                self.close()
                raise Rejected(
                    "unsafe content", f"entry name {info.filename[:80]!r} in {what} leaves the archive"
                )
        self.by_name = {info.filename: info for info in self.infos}

    def __enter__(self) -> SafeZip:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.archive.close()

    def names(self) -> list[str]:
        return [info.filename for info in self.infos]

    def head(self, info: zipfile.ZipInfo, size_bytes: int) -> bytes:
        """At most the first size_bytes of an entry (inflating at most one chunk more)."""
        return self.read(info, size_bytes, truncate=True)

    def read(self, info: zipfile.ZipInfo, limit_bytes: int, *, truncate: bool = False) -> bytes:
        """The entry's content; Rejected when it declares or inflates to more than limit_bytes
        (truncate: return the first limit_bytes instead), or when the archive's budget is spent."""
        name = info.filename[:80]
        if info.flag_bits & 0x1:
            raise Rejected("invalid model", f"entry {name!r} in {self.what} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise Rejected("invalid model", f"entry {name!r} in {self.what} uses an unsupported compression")
        if info.file_size > limit_bytes and not truncate:
            raise Rejected(
                "too large",
                f"entry {name!r} in {self.what} declares {info.file_size} bytes; at most {limit_bytes} are read",
            )
        budget = self._budget_bytes - self._read_bytes
        chunks: list[bytes] = []
        total = 0
        wanted = limit_bytes if truncate else limit_bytes + 1  # one byte more tells a liar
        try:
            with self.archive.open(info) as stream:
                while total < wanted:
                    chunk = stream.read(min(CHUNK_BYTES, wanted - total))
                    if not chunk:
                        break
                    total += len(chunk)
                    chunks.append(chunk)
                    if total > budget:
                        raise Rejected(
                            "too large",
                            f"{self.what} inflates past {self._budget_bytes} bytes in the entries checked",
                        )
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, struct.error) as exc:
            if isinstance(exc, Rejected):
                raise
            raise Rejected("invalid model", f"entry {name!r} in {self.what} is corrupt: {exc}") from None
        self._read_bytes += total
        data = b"".join(chunks)
        if len(data) > limit_bytes:
            if truncate:
                return data[:limit_bytes]
            raise Rejected(
                "invalid model",
                f"entry {name!r} in {self.what} inflates past its declared {info.file_size} bytes",
            )
        return data


def _escapes(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return name.startswith(("/", "\\")) or ".." in parts or "\x00" in name or ":" in parts[0]


def _check_end_record(handle: BinaryIO, what: str) -> None:
    """Entry count and directory size from the end record (zip64's where present), before zipfile
    builds a ZipInfo per directory entry. A missing record is left to zipfile to name."""
    handle.seek(0, io.SEEK_END)
    size = handle.tell()
    tail_start = max(0, size - _EOCD_BYTES - _MAX_COMMENT_BYTES)
    handle.seek(tail_start)
    tail = handle.read()
    at = tail.rfind(_EOCD)
    if at < 0 or len(tail) - at < _EOCD_BYTES:
        return
    entries, directory_bytes = struct.unpack("<10xHI6x", tail[at : at + _EOCD_BYTES])
    locator_at = tail_start + at - 20
    if locator_at >= 0:
        handle.seek(locator_at)
        locator = handle.read(20)
        if locator[:4] == _EOCD64_LOCATOR:
            (record_at,) = struct.unpack("<8xQ4x", locator)
            handle.seek(record_at)
            record = handle.read(56)
            if len(record) == 56 and record[:4] == _EOCD64:
                entries, directory_bytes = struct.unpack("<32xQQ8x", record)
    if entries > MAX_ENTRIES:
        raise Rejected("invalid model", f"{what} has {entries} entries; at most {MAX_ENTRIES} are accepted")
    if directory_bytes > MAX_DIRECTORY_BYTES:
        raise Rejected(
            "invalid model",
            f"{what}'s directory is {directory_bytes} bytes; at most {MAX_DIRECTORY_BYTES} are accepted",
        )
    handle.seek(0)
