"""Content-addressed storage: complete files or none, one copy per content."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest

from workers.registry import ModelStore, Rejected


def leftovers(store: ModelStore) -> list[Path]:
    return [p for p in store.incoming.iterdir()] if store.incoming.exists() else []


def test_a_committed_file_lives_under_its_sha256(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    data = b"model bytes" * 1000
    staged = store.stage([data[:5000], data[5000:]], max_bytes=1 << 20)
    digest = hashlib.sha256(data).hexdigest()
    assert staged.sha256 == digest and staged.size_bytes == len(data)
    assert store.commit(staged) is True
    path = tmp_path / "models" / digest[:2] / digest
    assert path.read_bytes() == data
    assert store.path_for(digest) == path and store.has(digest)
    assert not stat.S_IMODE(path.stat().st_mode) & 0o222, "stored files are read-only"
    assert leftovers(store) == []


def test_identical_content_is_stored_once(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    first = store.stage([b"same"], max_bytes=100)
    second = store.stage([b"same"], max_bytes=100)
    assert store.commit(first) is True
    assert store.commit(second) is False
    files = [p for p in (tmp_path / "models").rglob("*") if p.is_file()]
    assert files == [store.path_for(first.sha256)]


def test_too_large_content_is_refused_while_streaming_and_leaves_nothing(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    served = []

    def chunks():
        for i in range(100):
            served.append(i)
            yield b"x" * 100

    with pytest.raises(Rejected) as info:
        store.stage(chunks(), max_bytes=250)
    assert info.value.reason == "too large"
    assert len(served) == 3, "it stops reading at the limit"
    assert leftovers(store) == []


def test_an_upload_cut_off_midway_leaves_nothing(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)

    def chunks():
        yield b"part"
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        store.stage(chunks(), max_bytes=100)
    assert leftovers(store) == []


def test_a_file_on_disk_can_be_staged_and_removed(tmp_path: Path) -> None:
    source = tmp_path / "pruned.safetensors"
    source.write_bytes(b"\x01" * 3000)
    store = ModelStore(tmp_path / "data")
    staged = store.stage_file(source, max_bytes=10_000)
    store.commit(staged)
    assert store.has(staged.sha256) and source.exists()
    store.remove(staged.sha256)
    assert not store.has(staged.sha256)


def test_only_hex_digests_name_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        ModelStore(tmp_path).path_for("../../etc/passwd")
