"""SafeZip: entries read up to a cap and no further, honest ones whole, liars named."""

from __future__ import annotations

import pytest

from tests.hostile import zipcraft as z
from workers.registry import zips
from workers.registry.errors import Rejected


def test_an_honest_entry_of_exactly_the_limit_is_read_whole() -> None:
    with zips.SafeZip(z.build([z.deflated("a/x", b"y" * 1000)])) as archive:
        assert archive.read(archive.by_name["a/x"], 1000) == b"y" * 1000


def test_an_entry_declaring_more_than_the_limit_is_refused_unread() -> None:
    with zips.SafeZip(z.build([z.zeros_bomb("a/x", 64)])) as archive:
        with pytest.raises(Rejected, match="declares 67108864 bytes; at most 1000"):
            archive.read(archive.by_name["a/x"], 1000)
        assert archive._read_bytes == 0


def test_an_entry_inflating_past_what_it_declares_is_corrupt_after_one_chunk() -> None:
    with zips.SafeZip(z.build([z.zeros_bomb("a/x", 64, directory_size=100)])) as archive:
        with pytest.raises(Rejected, match="corrupt"):
            archive.read(archive.by_name["a/x"], 1 << 20)
        assert archive._read_bytes <= zips.CHUNK_BYTES


def test_head_reads_only_the_first_bytes_of_a_bomb() -> None:
    with zips.SafeZip(z.build([z.zeros_bomb("a/x", 64)])) as archive:
        assert archive.head(archive.by_name["a/x"], 16) == bytes(16)
        assert archive._read_bytes == 16


def test_the_archive_budget_counts_every_entry_read() -> None:
    entries = [z.zeros_bomb(f"a/{i}", 16) for i in range(zips.MAX_TOTAL_READ_BYTES // (16 << 20) + 1)]
    with zips.SafeZip(z.build(entries)) as archive, pytest.raises(Rejected, match="inflates past"):
        for info in archive.infos:
            archive.read(info, 16 << 20)


@pytest.mark.parametrize("declared", [None, 10])
def test_too_many_entries_are_refused_whatever_the_end_record_says(declared) -> None:
    data = z.build([z.stored(f"a/{i}", b"") for i in range(zips.MAX_ENTRIES + 1)], declared_count=declared)
    with pytest.raises(Rejected, match=f"{zips.MAX_ENTRIES + 1} entries"):
        zips.SafeZip(data)


@pytest.mark.parametrize("name", ["a/../../x", "/etc/x", "a\\..\\x", "C:/x"])
def test_names_leaving_the_archive_are_refused(name) -> None:
    with pytest.raises(Rejected, match="leaves the archive"):
        zips.SafeZip(z.build([z.stored(name, b"x")]))
