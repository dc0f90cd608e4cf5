"""scikit-learn's digits images (1,797 labeled 8x8 grey images), shaped for the zoo's MLPs.

The images are resized with bilinear interpolation to ``side`` x ``side`` (28 for the 784-input
models, 32 for the 1024-input ``PerformanceTestModel``), scaled from 0..16 to [0, 1] and flattened.
The train/test split is fixed (stratified, 20 % held out, seed 0): the same 360 images are the test
set on every machine, so accuracies measured before and after an optimization compare.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

Split = Literal["train", "test"]

TEST_FRACTION = 0.2
SPLIT_SEED = 0
# The digits' pixel values are integers 0..16.
_PIXEL_MAX = 16.0


@dataclass(frozen=True)
class DigitsData:
    """Flattened float32 images in [0, 1] and int64 labels 0..9 for both splits."""

    side: int
    train: TensorDataset
    test: TensorDataset

    @property
    def input_size(self) -> int:
        return self.side * self.side

    def dataset(self, split: Split) -> TensorDataset:
        if split == "train":
            return self.train
        if split == "test":
            return self.test
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")

    def loader(self, split: Split, batch_size: int = 64, shuffle: bool = False, seed: int = 0) -> DataLoader:
        """Batches of (images [B, side*side], labels [B]); a shuffled loader repeats for a given seed."""
        generator = torch.Generator().manual_seed(seed) if shuffle else None
        return DataLoader(self.dataset(split), batch_size=batch_size, shuffle=shuffle, generator=generator)


def side_for_input_size(input_size: int) -> int:
    """28 for 784 inputs, 32 for 1024; raises ValueError for sizes that are not a square image."""
    side = round(input_size**0.5)
    if side * side != input_size or side < 8:
        raise ValueError(f"{input_size} inputs are not a square image of at least 8x8 pixels")
    return side


@functools.cache
def load_digits(side: int) -> DigitsData:
    """The digits resized to side x side; cached per process (the tensors are never modified)."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    bunch = sklearn_digits()
    images = torch.from_numpy(bunch.images).to(torch.float32).unsqueeze(1) / _PIXEL_MAX
    if side != images.shape[-1]:
        images = F.interpolate(images, size=(side, side), mode="bilinear", align_corners=False)
    # Bilinear interpolation of values in [0, 1] stays in [0, 1]; clamp only guards float rounding.
    flat = images.clamp_(0.0, 1.0).flatten(1).contiguous()
    labels = torch.from_numpy(bunch.target).to(torch.int64)
    train_idx, test_idx = train_test_split(
        torch.arange(len(labels)).numpy(),
        test_size=TEST_FRACTION,
        random_state=SPLIT_SEED,
        stratify=labels.numpy(),
    )
    train_idx, test_idx = torch.from_numpy(train_idx), torch.from_numpy(test_idx)
    return DigitsData(
        side=side,
        train=TensorDataset(flat[train_idx], labels[train_idx]),
        test=TensorDataset(flat[test_idx], labels[test_idx]),
    )
