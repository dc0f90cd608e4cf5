"""Labeled data sets for the passes: the zoo's digits, or a user's ``.npz`` with ``x`` and ``y``."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from workers.passes.context import LabeledData
from workers.zoo import InputSpec

TEST_FRACTION = 0.2
MAX_NPZ_SAMPLES = 1_000_000
MAX_NPZ_BYTES = 2 * 1024**3


def digits_for_model(entry) -> LabeledData:
    """The digits split the zoo trains and evaluates on (same held-out 360 images everywhere)."""
    from workers.zoo.training import digits_for

    digits = digits_for(entry)
    train_x, train_y = digits.train.tensors
    test_x, test_y = digits.test.tensors
    return LabeledData(train_x, train_y, test_x, test_y, name="digits")


class InvalidDataset(ValueError):
    """An uploaded data set we refuse, with the reason in words."""


def load_npz(path: Path, input_spec: InputSpec, num_classes: int | None = None, seed: int = 0) -> LabeledData:
    """A ``.npz`` of ``x`` (float, shape [N, *input]) and ``y`` (int labels, shape [N]), split 80/20.

    Read without pickle (``allow_pickle=False``), sizes checked from the zip directory before any
    array is inflated, and the arrays checked: shapes match the model's input spec, no NaN or inf,
    labels in range."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = {info.filename: info for info in archive.infolist()}
    except zipfile.BadZipFile as exc:
        raise InvalidDataset(f"not an .npz (zip) file: {exc}") from None
    for name in ("x.npy", "y.npy"):
        if name not in infos:
            raise InvalidDataset(
                f"the .npz must hold arrays named x and y; it has {', '.join(sorted(infos)) or 'none'}"
            )
    if sum(infos[n].file_size for n in ("x.npy", "y.npy")) > MAX_NPZ_BYTES:
        raise InvalidDataset(f"x and y together are over {MAX_NPZ_BYTES // 1024**3} GiB")
    with np.load(path, allow_pickle=False) as arrays:
        x, y = arrays["x"], arrays["y"]
    expected = tuple(int(d) for d in input_spec.shape[1:] if d is not None)
    if x.ndim != 1 + len(expected) or tuple(x.shape[1:]) != expected:
        raise InvalidDataset(
            f"x has shape {list(x.shape)}; the model takes [N, {', '.join(map(str, expected))}]"
        )
    if y.shape != (x.shape[0],):
        raise InvalidDataset(f"y has shape {list(y.shape)}; expected one label per row of x: [{x.shape[0]}]")
    if not 10 <= x.shape[0] <= MAX_NPZ_SAMPLES:
        raise InvalidDataset(f"{x.shape[0]} samples; between 10 and {MAX_NPZ_SAMPLES:,} are accepted")
    if not np.issubdtype(x.dtype, np.floating) or not np.isfinite(x).all():
        raise InvalidDataset("x must be finite floats (no NaN or inf)")
    if not np.issubdtype(y.dtype, np.integer):
        raise InvalidDataset(f"y must be integer class labels, not {y.dtype}")
    if y.min() < 0 or (num_classes is not None and y.max() >= num_classes):
        top = f" and below {num_classes}" if num_classes is not None else ""
        raise InvalidDataset(f"labels must be >= 0{top}; found {int(y.min())} to {int(y.max())}")
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    cut = max(1, int(len(y) * TEST_FRACTION))
    xt, yt = torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.int64))
    return LabeledData(xt[order[cut:]], yt[order[cut:]], xt[order[:cut]], yt[order[:cut]], name=path.stem)
