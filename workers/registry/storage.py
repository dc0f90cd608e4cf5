"""Content-addressed storage of model files: ``<data dir>/models/<sha256[:2]>/<sha256>``.

A file is first streamed into ``models/.incoming/`` (same file system) while its SHA-256 is
computed, fsynced, checked, and only then renamed into place: a reader never sees a half-written
model, and a failed or refused upload leaves nothing behind. Identical content is stored once.
Stored files are made read-only: their name is their content.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from workers.registry.errors import Rejected

CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class StagedFile:
    """A complete, fsynced copy of an upload waiting in the incoming directory."""

    path: Path
    sha256: str
    size_bytes: int


class ModelStore:
    """Files under their SHA-256 in data_dir/<folder> (models; uploaded data sets use "datasets")."""

    def __init__(self, data_dir: Path, folder: str = "models") -> None:
        self.root = Path(data_dir) / folder
        self.incoming = self.root / ".incoming"

    def path_for(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256

    def has(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def stage(self, chunks: Iterable[bytes], max_bytes: int) -> StagedFile:
        """Copy chunks into a temporary file, hashing them; raises Rejected("too large") past max_bytes."""
        self.incoming.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.incoming, prefix="upload-")
        path = Path(name)
        digest = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as handle:
                for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise Rejected("too large", f"over the upload limit of {max_bytes} bytes")
                    digest.update(chunk)
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return StagedFile(path, digest.hexdigest(), size)

    def stage_file(self, source: Path, max_bytes: int) -> StagedFile:
        """stage() from a file on disk (a model an optimization job wrote, for example)."""
        with Path(source).open("rb") as handle:
            return self.stage(iter(lambda: handle.read(CHUNK_BYTES), b""), max_bytes)

    def commit(self, staged: StagedFile) -> bool:
        """Move a staged file to its content address; True when it is new, False when it was there."""
        target = self.path_for(staged.sha256)
        if target.is_file():
            staged.path.unlink(missing_ok=True)
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(staged.path, 0o444)
        # Atomic on one file system; a racing upload of the same bytes renames identical content.
        os.replace(staged.path, target)
        _fsync_dir(target.parent)
        return True

    def discard(self, staged: StagedFile) -> None:
        staged.path.unlink(missing_ok=True)

    def remove(self, sha256: str) -> None:
        """Delete a stored file (the caller has checked that nothing refers to it)."""
        path = self.path_for(sha256)
        path.unlink(missing_ok=True)
        _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; without it a crash could lose a file the database refers to.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
