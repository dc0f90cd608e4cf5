"""The model zoo: named models with the inputs they expect.

Add a model by writing its module (like ``mlp.py``) and one ``ZooEntry`` in ``ZOO``.

Importing this package does not import torch: the web server and the sampler read the catalogue
(names, descriptions, input specs) and only the worker that builds a model pays for torch.

The four MLPs are trained on scikit-learn's digits (``digits.py``, ``training.py``):
``entry.build(weights_dir)`` trains once and caches the weights there as safetensors, and
``evaluate_accuracy(model, entry)`` measures them on the fixed held-out split.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
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

    @classmethod
    def from_json(cls, data: Any) -> InputSpec:
        """The spec written by ``to_json``; raises ValueError naming what is wrong.

        Example: {"shape": [null, 784], "dtype": "float32", "low": 0, "high": 1}; float32 values
        default to [0, 1) when low and high are left out, int64 ranges must be given."""
        if not isinstance(data, dict):
            raise ValueError('an input spec is a JSON object: {"shape": [null, ...], "dtype", "low", "high"}')
        unknown = sorted(set(data) - {"shape", "dtype", "low", "high"})
        if unknown:
            raise ValueError(f"unknown input spec keys: {', '.join(unknown)}")
        if data.get("dtype") == "float32":
            # Inputs of a float model are most often normalised: [0, 1) unless the spec says otherwise.
            data = {"low": 0.0, "high": 1.0} | data
        missing = [key for key in ("shape", "dtype", "low", "high") if key not in data]
        if missing:
            raise ValueError(f"input spec lacks {', '.join(missing)}")
        shape, dtype, low, high = data["shape"], data["dtype"], data["low"], data["high"]
        if not isinstance(shape, list) or not all(d is None or _is_int(d) for d in shape):
            raise ValueError("shape must be a list of integers, starting with null for the batch")
        if not isinstance(dtype, str):
            raise ValueError("dtype must be a string")
        for key, value in (("low", low), ("high", high)):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{key} must be a number")
        return cls(shape=tuple(shape), dtype=dtype, low=float(low), high=float(high))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class ZooEntry:
    """A named model: ``build()`` returns a fresh instance in eval mode with deterministic weights.

    ``factory`` is "module:attribute", imported only when the model is built. ``dataset`` names
    the data set the model is trained on ("digits"), or None for models that stay untrained."""

    name: str
    description: str
    factory: str
    input_spec: InputSpec
    dataset: str | None = None

    @property
    def trainable(self) -> bool:
        return self.dataset is not None

    def weights_ready(self, weights_dir: Path) -> bool:
        """Whether ``build(weights_dir)`` is quick: an untrained model, or trained weights cached
        there. False means that build would first train the model (a minute of CPU or more)."""
        if not self.trainable:
            return True
        from workers.zoo.training import is_cached

        return is_cached(self, Path(weights_dir))

    def build(self, weights_dir: Path | None = None) -> nn.Module:
        """A fresh model in eval mode on the CPU.

        Without ``weights_dir``: the seeded initial weights (what a benchmark needs). With it, a
        trainable model gets its trained weights, loaded from ``weights_dir/<name>.safetensors`` or
        trained (seconds) and cached there first; an untrained model ignores the directory."""
        import torch

        module_name, _, attribute = self.factory.partition(":")
        cls: Callable[[], nn.Module] = getattr(importlib.import_module(module_name), attribute)
        # fork_rng keeps the caller's RNG stream untouched; devices=[] avoids initialising CUDA.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(BUILD_SEED)
            model = cls().eval()
            if weights_dir is not None and self.trainable:
                from workers.zoo.training import train_or_load

                model = train_or_load(self, model, Path(weights_dir))
        return model


class UnknownModel(KeyError):
    """Raised by ``get`` for a name that is not in the zoo."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        # KeyError's own __str__ would repr() the whole message, quotes and all.
        return f"unknown model {self.name!r}; known models: {', '.join(names())}"


_FLAT_784 = InputSpec(shape=(None, 784), dtype="float32", low=0.0, high=1.0)

# Kept in step with workers/zoo/transformer.py (not imported here: it would import torch).
_TRANSFORMER_VOCAB_SIZE = 1000
_TRANSFORMER_SEQUENCE_LENGTH = 128

ZOO: dict[str, ZooEntry] = {
    e.name: e
    for e in [
        ZooEntry(
            "PerformanceTestModel",
            "MLP 1024-512-256-10 from the seed article's performance test, trained on 32x32 digits",
            "workers.zoo.mlp:PerformanceTestModel",
            InputSpec(shape=(None, 1024), dtype="float32", low=0.0, high=1.0),
            dataset="digits",
        ),
        ZooEntry(
            "SimpleModel",
            "MLP 784-256-128-10, trained on 28x28 digits",
            "workers.zoo.mlp:SimpleModel",
            _FLAT_784,
            dataset="digits",
        ),
        ZooEntry(
            "TeacherModel",
            "MLP 784-512-256-10, the distillation teacher, trained on 28x28 digits",
            "workers.zoo.mlp:TeacherModel",
            _FLAT_784,
            dataset="digits",
        ),
        ZooEntry(
            "StudentModel",
            "MLP 784-128-64-10, the distillation student, trained on 28x28 digits",
            "workers.zoo.mlp:StudentModel",
            _FLAT_784,
            dataset="digits",
        ),
        ZooEntry(
            "SmallResNet",
            "ResNet-style CNN (3 stages of 2 residual blocks, 16-32-64 channels) for 3x32x32 images",
            "workers.zoo.resnet:SmallResNet",
            InputSpec(shape=(None, 3, 32, 32), dtype="float32", low=0.0, high=1.0),
        ),
        ZooEntry(
            "TinyTransformer",
            "Transformer encoder classifier: 4 layers, width 256, 128 tokens from a 1000-word vocabulary",
            "workers.zoo.transformer:TinyTransformer",
            InputSpec(
                shape=(None, _TRANSFORMER_SEQUENCE_LENGTH),
                dtype="int64",
                low=0,
                high=_TRANSFORMER_VOCAB_SIZE,
            ),
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


def evaluate_accuracy(
    model: Callable[[torch.Tensor], torch.Tensor], entry: ZooEntry, split: str = "test"
) -> float:
    """Fraction (0..1) of the digits in split ("train" or "test") that model classifies correctly.

    Only for entries trained on the digits (``entry.trainable``); raises ValueError otherwise."""
    from workers.zoo.training import evaluate_accuracy as evaluate

    return evaluate(model, entry, split)  # type: ignore[arg-type]


def digits_data(entry: ZooEntry):  # -> workers.zoo.digits.DigitsData (kept lazy: it imports torch)
    """The digits shaped for entry's input: ``.train`` / ``.test`` datasets and ``.loader(split, ...)``."""
    from workers.zoo.training import digits_for

    return digits_for(entry)


__all__ = [
    "ZOO",
    "InputSpec",
    "UnknownModel",
    "ZooEntry",
    "digits_data",
    "evaluate_accuracy",
    "get",
    "names",
]
