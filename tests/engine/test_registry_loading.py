"""Loading stored models for a forward pass, and the worker's test forward with the declared input spec."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.engine import test_registry_samples as samples
from workers import zoo
from workers.registry import ModelFormat, Rejected, load_model, validate
from workers.zoo import InputSpec

SPEC = InputSpec.from_json(samples.SPEC_784)
CASES = [
    ("m.pt", samples.torchscript_mlp, ModelFormat.TORCHSCRIPT, ""),
    ("m.pt2", samples.exported_mlp, ModelFormat.PT2, ""),
    ("m.onnx", samples.onnx_mlp, ModelFormat.ONNX, ""),
    ("m.safetensors", samples.safetensors_state_dict, ModelFormat.SAFETENSORS, "SimpleModel"),
]


@pytest.mark.parametrize("name, make, fmt, architecture", CASES)
def test_every_format_loads_and_computes_what_the_original_model_does(
    tmp_path, name, make, fmt, architecture
):
    path = tmp_path / name
    path.write_bytes(make())
    model = load_model(path, fmt, architecture)
    x = SPEC.make(5, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = zoo.get("SimpleModel").build()(x)
        got = model(x)
    assert got.shape == (5, 10)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name, make, fmt, architecture", CASES)
def test_validation_runs_a_batch_and_reports_the_output(tmp_path, name, make, fmt, architecture):
    path = tmp_path / name
    path.write_bytes(make())
    check = validate(path, fmt, architecture, SPEC)
    assert check.output_shapes == [[2, 10]]
    assert check.forward_ms > 0
    assert check.to_json()["output_shapes"] == [[2, 10]]


def test_an_input_spec_that_does_not_fit_is_rejected_with_the_error(tmp_path: Path) -> None:
    path = tmp_path / "m.pt"
    path.write_bytes(samples.torchscript_mlp())
    wrong = InputSpec(shape=(None, 100), dtype="float32", low=0, high=1)
    with pytest.raises(Rejected) as info:
        validate(path, ModelFormat.TORCHSCRIPT, "", wrong)
    assert info.value.reason == "input spec does not fit"
    assert "float32 batch of shape [2, 100] failed" in str(info.value)
    assert "mat1 and mat2 shapes cannot be multiplied (2x100 and 784x256)" in str(info.value)


def test_a_model_that_drops_the_batch_dimension_is_rejected(tmp_path: Path) -> None:
    class SumAll(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.sum()

    path = tmp_path / "sum.pt"
    torch.jit.save(torch.jit.script(SumAll()), str(path))
    with pytest.raises(Rejected, match="first dimension must be the batch"):
        validate(path, ModelFormat.TORCHSCRIPT, "", SPEC)


def test_a_stored_file_is_trusted_no_more_than_an_upload(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "m.pt"
    path.write_bytes(samples.torchscript_writing_on_load(marker))
    with pytest.raises(Rejected, match="__setstate__"):
        load_model(path, ModelFormat.TORCHSCRIPT)
    assert not marker.exists()
    path.write_bytes(samples.onnx_mlp())
    with pytest.raises(Rejected, match="is an ONNX model"):
        load_model(path, ModelFormat.PT2)


def test_the_transformer_loads_from_a_state_dict_with_int64_tokens(tmp_path: Path) -> None:
    path = tmp_path / "t.safetensors"
    path.write_bytes(samples.safetensors_state_dict("TinyTransformer"))
    check = validate(path, ModelFormat.SAFETENSORS, "TinyTransformer", zoo.get("TinyTransformer").input_spec)
    assert check.output_shapes == [[2, 10]]
