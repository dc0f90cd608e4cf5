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
ALL_MODELS = sorted([*EXPECTED_LAYERS, "SmallResNet", "TinyTransformer"])


def test_it_lists_the_seed_models_and_the_cnn_and_transformer() -> None:
    assert zoo.names() == ALL_MODELS


@pytest.mark.parametrize("name", sorted(EXPECTED_LAYERS))
def test_it_builds_the_listed_layer_sizes(name: str) -> None:
    model = zoo.get(name).build()
    linears = [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]
    assert linears == EXPECTED_LAYERS[name]
    assert any(isinstance(m, nn.ReLU) for m in model.modules())
    assert not model.training


@pytest.mark.parametrize("name", ALL_MODELS)
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


def test_input_spec_round_trips_through_json() -> None:
    for name in ALL_MODELS:
        spec = zoo.get(name).input_spec
        assert InputSpec.from_json(spec.to_json()) == spec


@pytest.mark.parametrize(
    "data, reason",
    [
        ([None, 784], "JSON object"),
        ({"shape": [None, 16], "dtype": "int64", "low": 0}, "lacks high"),
        ({"shape": [None, 16], "dtype": "int64"}, "lacks low, high"),
        (
            {"shape": [None, 784], "dtype": "float32", "low": 0, "high": 1, "mean": 0},
            "unknown input spec keys: mean",
        ),
        ({"shape": [None, "784"], "dtype": "float32", "low": 0, "high": 1}, "list of integers"),
        ({"shape": [None, 784], "dtype": "float32", "low": "0", "high": 1}, "low must be a number"),
        ({"shape": [1, 784], "dtype": "float32", "low": 0, "high": 1}, "batch dimension"),
    ],
)
def test_bad_input_spec_json_names_the_problem(data: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        InputSpec.from_json(data)


def test_a_float32_spec_without_a_range_defaults_to_zero_to_one() -> None:
    spec = InputSpec.from_json({"shape": [None, 784], "dtype": "float32"})
    assert (spec.low, spec.high) == (0.0, 1.0)
    assert InputSpec.from_json({"shape": [None, 3], "dtype": "float32", "high": 255}).high == 255.0
    assert InputSpec.from_json({"shape": [None, 3], "dtype": "float32", "low": -1, "high": 1}).low == -1.0


def test_the_cnn_and_transformer_declare_their_inputs() -> None:
    cnn = zoo.get("SmallResNet").input_spec
    assert cnn.to_json() == {"shape": [None, 3, 32, 32], "dtype": "float32", "low": 0.0, "high": 1.0}
    tokens = zoo.get("TinyTransformer").input_spec
    assert tokens.shape == (None, 128) and tokens.dtype == "int64" and (tokens.low, tokens.high) == (0, 1000)


def test_the_transformer_has_four_layers_of_width_256() -> None:
    model = zoo.get("TinyTransformer").build()
    layers = [m for m in model.modules() if isinstance(m, nn.TransformerEncoderLayer)]
    assert len(layers) == 4
    assert all(layer.linear1.in_features == 256 for layer in layers)
    # Every token id below the vocabulary size is valid; the largest must not index out of range.
    with torch.inference_mode():
        assert model(torch.full((2, 128), 999)).shape == (2, 10)


def test_the_cnn_has_residual_blocks_and_a_3_channel_stem() -> None:
    from workers.zoo.resnet import BasicBlock

    model = zoo.get("SmallResNet").build()
    assert sum(isinstance(m, BasicBlock) for m in model.modules()) == 6
    first_conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert first_conv.in_channels == 3


def test_importing_the_zoo_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import sys, workers.zoo; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


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
