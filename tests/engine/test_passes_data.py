"""workers.passes.data.read_npz / load_npz: what numpy.savez writes reads back exactly (C or Fortran
order, either byte order, compressed or not), split 80/20 the same way every time."""

from __future__ import annotations

import numpy as np
import pytest

from workers.passes.data import InvalidDataset, load_npz, read_npz
from workers.zoo import InputSpec

SPEC = InputSpec(shape=(None, 4, 6), dtype="float32", low=0.0, high=1.0)


@pytest.mark.parametrize("layout", ["C", "F"])
@pytest.mark.parametrize("dtype", ["<f4", ">f8", "<f2"])
@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_arrays_read_back_exactly(tmp_path, layout, dtype, save) -> None:
    rng = np.random.default_rng(0)
    x = np.asarray(rng.random((30, 4, 6)), dtype=dtype, order=layout)
    y = rng.integers(0, 5, 30).astype(">i8")
    save(tmp_path / "d.npz", x=x, y=y)
    got_x, got_y = read_npz(tmp_path / "d.npz", SPEC, num_classes=5)
    np.testing.assert_array_equal(got_x, x)
    np.testing.assert_array_equal(got_y, y)


def test_the_split_is_80_20_and_the_same_every_time(tmp_path) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((50, 4, 6), np.float32), y=np.arange(50) % 5)
    first, again = (load_npz(tmp_path / "d.npz", SPEC, 5) for _ in range(2))
    assert (len(first.train_y), len(first.test_y)) == (40, 10)
    assert first.test_y.tolist() == again.test_y.tolist()


def test_arrays_over_the_limit_are_refused_before_they_are_read(tmp_path) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((50, 4, 6), np.float32), y=np.arange(50) % 5)
    with pytest.raises(InvalidDataset, match="at most 1,000 are accepted"):
        read_npz(tmp_path / "d.npz", SPEC, 5, max_bytes=1_000)
