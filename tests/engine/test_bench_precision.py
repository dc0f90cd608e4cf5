"""Precision: the forward pass really runs in the dtype asked for, and the result says which."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from workers import zoo
from workers.bench import BenchSpec, run_benchmark
from workers.zoo import InputSpec

QUICK = {"iterations": 5, "warmup_iterations": 1, "threads": 1, "time_budget_s": 0.2}
TOKENS = InputSpec(shape=(None, 16), dtype="int64", low=0, high=100)


class DtypeSpy(nn.Module):
    """A Linear layer that records the dtypes its forward pass sees."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(784, 10)
        self.seen: set[tuple[torch.dtype, torch.dtype, torch.dtype]] = set()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        self.seen.add((x.dtype, self.fc.weight.dtype, y.dtype))
        return y


class TokenSpy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(100, 32)
        self.seen: set[tuple[torch.dtype, torch.dtype]] = set()

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        y = self.embed(ids)
        self.seen.add((ids.dtype, y.dtype))
        return y


@pytest.mark.parametrize(("precision", "dtype"), [("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_half_precisions_run_in_that_dtype_on_the_cpu(precision: str, dtype: torch.dtype) -> None:
    model = DtypeSpy()
    spec = BenchSpec(batch_sizes=(1, 8), precision=precision, **QUICK)  # type: ignore[arg-type]
    result = run_benchmark(model, zoo.get("SimpleModel").input_spec, spec).to_json()
    # Inputs, weights and outputs all in the reduced dtype: no silent fp32 fallback.
    assert model.seen == {(dtype, dtype, dtype)}
    assert result["env"]["precision"] == precision
    assert result["spec"]["precision"] == precision
    assert all(run["latency_ms"]["p50"] > 0 for run in result["runs"])


def test_fp32_is_the_default() -> None:
    model = DtypeSpy()
    result = run_benchmark(model, zoo.get("SimpleModel").input_spec, BenchSpec(batch_sizes=(2,), **QUICK))
    assert model.seen == {(torch.float32, torch.float32, torch.float32)}
    assert result.env["precision"] == "fp32"


def test_integer_inputs_keep_their_dtype() -> None:
    model = TokenSpy()
    run_benchmark(model, TOKENS, BenchSpec(batch_sizes=(2,), precision="bf16", **QUICK))  # type: ignore[arg-type]
    # Token ids stay int64 (an embedding cannot index with bf16); the embedding itself is bf16.
    assert model.seen == {(torch.int64, torch.bfloat16)}


def test_a_zoo_model_runs_in_bf16_end_to_end() -> None:
    entry = zoo.get("StudentModel")
    model = entry.build()
    run_benchmark(model, entry.input_spec, BenchSpec(batch_sizes=(4,), precision="bf16", **QUICK))  # type: ignore[arg-type]
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}


def test_an_unknown_precision_is_refused() -> None:
    with pytest.raises(ValueError, match="precision must be one of fp32, fp16, bf16"):
        BenchSpec(batch_sizes=(1,), iterations=1, precision="fp8")  # type: ignore[arg-type]
