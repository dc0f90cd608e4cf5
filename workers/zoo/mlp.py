"""The seed article's four MLPs: three Linear layers with ReLU between them.

Attribute names (fc1, fc2, fc3) follow the article, so its state dicts load unchanged.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn


class _ThreeLayerMLP(nn.Module):
    """in -> hidden1 -> hidden2 -> out, ReLU after each hidden layer; subclasses set ``sizes``."""

    sizes: ClassVar[tuple[int, int, int, int]]

    def __init__(self) -> None:
        super().__init__()
        d_in, h1, h2, d_out = self.sizes
        self.fc1 = nn.Linear(d_in, h1)
        self.fc2 = nn.Linear(h1, h2)
        self.fc3 = nn.Linear(h2, d_out)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # flatten(1) lets image-shaped batches (B, 1, 28, 28) through as well as (B, 784).
        x = self.relu(self.fc1(x.flatten(1)))
        x = self.relu(self.fc2(x))
        return self.fc3(x)


class PerformanceTestModel(_ThreeLayerMLP):
    sizes = (1024, 512, 256, 10)


class SimpleModel(_ThreeLayerMLP):
    sizes = (784, 256, 128, 10)


class TeacherModel(_ThreeLayerMLP):
    sizes = (784, 512, 256, 10)


class StudentModel(_ThreeLayerMLP):
    sizes = (784, 128, 64, 10)
