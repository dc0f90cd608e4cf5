from __future__ import annotations

import pytest
import torch
from torch import nn

from workers import zoo
from workers.zoo import InputSpec, UnknownModel

EXPECTED_LAYERS = {
    "PerformanceTestModel": [(1024, 512), (512, 256), (256, 10)],
    "SimpleModel": [(784, 256), (256, 128), (128, 10)],
    "TeacherModel": [(784, 512), (512, 256), (256, 10)],
    "StudentModel": [(784, 128), (128, 64), (64, 10)],
}


def test_it_lists_the_seed_models() -> None:
    assert zoo.names() == sorted(EXPECTED_LAYERS)


@pytest.mark.parametrize("name", sorted(EXPECTED_LAYERS))
def test_it_builds_the_listed_layer_sizes(name: str) -> None:
    model = zoo.get(name).build()
    linears = [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]
    assert linears == EXPECTED_LAYERS[name]
    assert any(isinstance(m, nn.ReLU) for m in model.modules())
    assert not model.training


@pytest.mark.parametrize("name", sorted(EXPECTED_LAYERS))
@pytest.mark.parametrize("batch_size", [1, 7])
def test_forward_gives_ten_logits_per_sample(name: str, batch_size: int) -> None:
    entry = zoo.get(name)
    x = entry.input_spec.make(batch_size)
    with torch.inference_mode():
        assert entry.build()(x).shape == (batch_size, 10)


def test_builds_have_identical_weights() -> None:
    a = zoo.get("TeacherModel").build().state_dict()
    b = zoo.get("TeacherModel").build().state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_building_leaves_the_callers_rng_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    zoo.get("SimpleModel").build()
    assert torch.equal(torch.rand(3), expected)


def test_unknown_model_names_the_known_ones() -> None:
    with pytest.raises(UnknownModel) as info:
        zoo.get("ResNet9000")
    assert isinstance(info.value, KeyError)
    message = str(info.value)
    assert "ResNet9000" in message
    for name in EXPECTED_LAYERS:
        assert name in message


def test_float_inputs_lie_in_range_and_repeat_with_a_seed() -> None:
    spec = InputSpec(shape=(None, 784), dtype="float32", low=0.0, high=1.0)
    x = spec.make(64, generator=torch.Generator().manual_seed(5))
    assert x.shape == (64, 784) and x.dtype == torch.float32
    assert x.min().item() >= 0.0 and x.max().item() < 1.0
    assert torch.equal(x, spec.make(64, generator=torch.Generator().manual_seed(5)))


def test_int_inputs_lie_in_range() -> None:
    spec = InputSpec(shape=(None, 16), dtype="int64", low=0, high=100)
    x = spec.make(32)
    assert x.dtype == torch.int64 and x.shape == (32, 16)
    assert x.min().item() >= 0 and x.max().item() < 100


def test_input_spec_to_json() -> None:
    spec = zoo.get("SimpleModel").input_spec
    assert spec.to_json() == {"shape": [None, 784], "dtype": "float32", "low": 0.0, "high": 1.0}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"shape": (784,), "dtype": "float32", "low": 0, "high": 1},
        {"shape": (None, None), "dtype": "float32", "low": 0, "high": 1},
        {"shape": (None, 784), "dtype": "float16", "low": 0, "high": 1},
        {"shape": (None, 784), "dtype": "float32", "low": 1, "high": 1},
    ],
)
def test_bad_input_specs_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        InputSpec(**kwargs)
