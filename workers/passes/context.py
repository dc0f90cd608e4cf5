"""What a pass may use besides the model: the device, example inputs, data, progress and cancel."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from workers.bench.progress import Cancelled
from workers.zoo import InputSpec


@dataclass(frozen=True)
class LabeledData:
    """A classification data set: float inputs and int64 labels, split into train and held-out test."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    name: str = "data"

    @property
    def num_classes(self) -> int:
        return int(max(self.train_y.max(), self.test_y.max())) + 1

    def train_batches(self, batch_size: int, seed: int):
        order = torch.randperm(len(self.train_y), generator=torch.Generator().manual_seed(seed))
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            yield self.train_x[index], self.train_y[index]


@dataclass
class PassContext:
    """``threads`` is the CPU thread count the result will be timed with (ONNX Runtime sessions are
    built for it). ``data`` is the labeled data set when the model has one (the zoo's digits, an
    uploaded ``.npz``); calibration and fine-tuning use its train split, never the held-out one.
    ``on_step(text)`` reports progress; ``should_stop()`` is polled and ends the pass with Cancelled."""

    input_spec: InputSpec
    device: str = "cpu"
    threads: int = 1
    data: LabeledData | None = None
    on_step: Callable[[str], None] = lambda text: None
    should_stop: Callable[[], bool] = lambda: False
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def step(self, text: str) -> None:
        if self.should_stop():
            raise Cancelled()
        self.on_step(text)

    def example_batch(self, batch_size: int = 8) -> torch.Tensor:
        return self.input_spec.make(
            batch_size, device=self.device, generator=torch.Generator().manual_seed(self.seed)
        )

    def calibration_batches(self, count: int, batch_size: int = 32) -> list[torch.Tensor]:
        """Real training inputs where there are any (the article calibrated on random ones, which
        sets activation ranges the real data never has); generated inputs only for unlabeled models."""
        if self.data is not None:
            x = self.data.train_x[: count * batch_size]
            return [x[i : i + batch_size].to(self.device) for i in range(0, len(x), batch_size)]
        generator = torch.Generator().manual_seed(self.seed + 1)
        return [
            self.input_spec.make(batch_size, device=self.device, generator=generator) for _ in range(count)
        ]


@dataclass(frozen=True)
class PassOutcome:
    """What a pass made and what it has to say about it (shown on the job page as is)."""

    candidate: Any  # Candidate; Any avoids an import cycle with candidate.py's users
    notes: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)
