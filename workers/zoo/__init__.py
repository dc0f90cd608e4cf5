"""The model zoo: named models with the inputs they expect.

Add a model by writing its module (like ``mlp.py``) and one ``ZooEntry`` in ``ZOO``.

Importing this package does not import torch: the web server and the sampler read the catalogue
(names, descriptions, input specs) and only the worker that builds a model pays for torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

_DTYPES = frozenset({"float32", "int64"})

# Every zoo model is built under this seed so two builds (and two nodes) get the same weights.
BUILD_SEED = 0


@dataclass(frozen=True)
class InputSpec:
    """The shape and value range of one model input.

    ``shape`` starts with ``None``, the batch dimension, filled in by ``make``.
    Values are uniform floats in [low, high) for float32, random ints in [low, high) for int64.
    """

    shape: tuple[int | None, ...]
    dtype: str
    low: float
    high: float

    def __post_init__(self) -> None:
        if self.dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, not {self.dtype!r}")
        if not self.shape or self.shape[0] is not None:
            raise ValueError("shape must start with None, the batch dimension")
        if any(d is None or d < 1 for d in self.shape[1:]):
            raise ValueError(f"only the first dimension may be None, the rest must be >= 1: {self.shape}")
        if not self.low < self.high:
            raise ValueError(f"low must be below high: [{self.low}, {self.high})")

    def make(
        self,
        batch_size: int,
        device: str | torch.device = "cpu",
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """A random batch of ``batch_size`` inputs on ``device``."""
        import torch

        shape = (batch_size, *(int(d) for d in self.shape[1:] if d is not None))
        # Drawn on the CPU, then moved: a CPU generator works for every target device,
        # so one seed gives the same input on CPU and GPU.
        if self.dtype == "int64":
            x = torch.randint(int(self.low), int(self.high), shape, generator=generator, dtype=torch.int64)
        else:
            x = torch.rand(shape, generator=generator) * (self.high - self.low) + self.low
        return x.to(device)

    def to_json(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "dtype": self.dtype, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class ZooEntry:
    """A named model: ``build()`` returns a fresh instance in eval mode with deterministic weights.

    ``factory`` is "module:attribute", imported only when the model is built."""

    name: str
    description: str
    factory: str
    input_spec: InputSpec

    def build(self) -> nn.Module:
        import torch

        module_name, _, attribute = self.factory.partition(":")
        cls: Callable[[], nn.Module] = getattr(importlib.import_module(module_name), attribute)
        # fork_rng keeps the caller's RNG stream untouched; devices=[] avoids initialising CUDA.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(BUILD_SEED)
            return cls().eval()


class UnknownModel(KeyError):
    """Raised by ``get`` for a name that is not in the zoo."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        # KeyError's own __str__ would repr() the whole message, quotes and all.
        return f"unknown model {self.name!r}; known models: {', '.join(names())}"


_FLAT_784 = InputSpec(shape=(None, 784), dtype="float32", low=0.0, high=1.0)

ZOO: dict[str, ZooEntry] = {
    e.name: e
    for e in [
        ZooEntry(
            "PerformanceTestModel",
            "MLP 1024-512-256-10 from the seed article's performance test",
            "workers.zoo.mlp:PerformanceTestModel",
            InputSpec(shape=(None, 1024), dtype="float32", low=0.0, high=1.0),
        ),
        ZooEntry(
            "SimpleModel",
            "MLP 784-256-128-10 for 28x28 digit images",
            "workers.zoo.mlp:SimpleModel",
            _FLAT_784,
        ),
        ZooEntry(
            "TeacherModel",
            "MLP 784-512-256-10, the distillation teacher",
            "workers.zoo.mlp:TeacherModel",
            _FLAT_784,
        ),
        ZooEntry(
            "StudentModel",
            "MLP 784-128-64-10, the distillation student",
            "workers.zoo.mlp:StudentModel",
            _FLAT_784,
        ),
    ]
}


def get(name: str) -> ZooEntry:
    """The zoo entry called ``name``; raises ``UnknownModel`` listing the known names."""
    try:
        return ZOO[name]
    except KeyError:
        raise UnknownModel(name) from None


def names() -> list[str]:
    """The zoo's model names, sorted."""
    return sorted(ZOO)


__all__ = [
    "ZOO",
    "InputSpec",
    "UnknownModel",
    "ZooEntry",
    "get",
    "names",
]
