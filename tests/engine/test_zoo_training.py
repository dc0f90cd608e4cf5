"""The zoo's MLPs trained on scikit-learn's digits: real accuracy, determinism and the safetensors cache."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from workers import zoo
from workers.zoo.digits import load_digits

MLPS_784 = ["SimpleModel", "StudentModel", "TeacherModel"]


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("zoo-weights")


@pytest.fixture(scope="module")
def trained(weights_dir: Path) -> dict[str, torch.nn.Module]:
    return {name: zoo.get(name).build(weights_dir) for name in [*MLPS_784, "PerformanceTestModel"]}


def test_the_split_is_fixed_disjoint_and_shaped_for_each_input_size() -> None:
    data28, data32 = load_digits(28), load_digits(32)
    assert len(data28.train) + len(data28.test) == 1797
    assert len(data28.test) == 360
    images, labels = data28.test.tensors
    assert images.shape == (360, 784) and images.dtype == torch.float32
    assert images.min() >= 0.0 and images.max() <= 1.0 and images.max() > 0.9
    assert sorted(labels.unique().tolist()) == list(range(10))
    assert data32.test.tensors[0].shape == (360, 1024)
    # The same images are held out at both sizes: the labels line up one for one.
    assert torch.equal(data32.test.tensors[1], labels)
    train_rows = {tuple(row.tolist()) for row in data28.train.tensors[0][:, ::7]}
    assert not any(tuple(row.tolist()) in train_rows for row in images[:, ::7][:50])


@pytest.mark.parametrize("name", MLPS_784)
def test_the_784_input_mlps_classify_held_out_digits(trained: dict, name: str) -> None:
    accuracy = zoo.evaluate_accuracy(trained[name], zoo.get(name))
    print(f"{name}: held-out accuracy {accuracy:.3f}")
    assert accuracy > 0.9


def test_the_1024_input_mlp_learns_the_32x32_digits(trained: dict) -> None:
    entry = zoo.get("PerformanceTestModel")
    accuracy = zoo.evaluate_accuracy(trained["PerformanceTestModel"], entry)
    print(f"PerformanceTestModel: held-out accuracy {accuracy:.3f}")
    assert accuracy > 0.9
    untrained = zoo.evaluate_accuracy(entry.build(), entry)
    assert untrained < 0.3, "the seeded initial weights are a guess; training is what makes it right"


def test_two_trainings_give_identical_weights(tmp_path: Path, trained: dict) -> None:
    again = zoo.get("StudentModel").build(tmp_path).state_dict()
    first = trained["StudentModel"].state_dict()
    assert first.keys() == again.keys()
    assert all(torch.equal(first[k], again[k]) for k in first)


def test_the_cache_is_safetensors_and_is_loaded_not_retrained(weights_dir: Path, trained: dict) -> None:
    from safetensors.torch import load_file

    path = weights_dir / "SimpleModel.safetensors"
    header_len = int.from_bytes(path.read_bytes()[:8], "little")
    assert path.read_bytes()[8:9] == b"{" and header_len < path.stat().st_size
    stored = load_file(str(path))
    assert torch.equal(stored["fc1.weight"], trained["SimpleModel"].state_dict()["fc1.weight"])

    mtime = path.stat().st_mtime_ns
    reloaded = zoo.get("SimpleModel").build(weights_dir)
    assert path.stat().st_mtime_ns == mtime
    assert torch.equal(reloaded.state_dict()["fc3.bias"], stored["fc3.bias"])
    assert not reloaded.training


def test_a_damaged_cache_file_is_retrained(tmp_path: Path, trained: dict) -> None:
    (tmp_path / "StudentModel.safetensors").write_bytes(b"\x80\x04not a safetensors file")
    model = zoo.get("StudentModel").build(tmp_path)
    assert torch.equal(model.state_dict()["fc1.weight"], trained["StudentModel"].state_dict()["fc1.weight"])
    assert (tmp_path / "StudentModel.safetensors").read_bytes()[8:9] == b"{"


def test_training_leaves_the_thread_count_and_rng_alone(tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    zoo.get("StudentModel").build(tmp_path)
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads


def test_models_without_a_data_set_have_no_accuracy(tmp_path: Path) -> None:
    entry = zoo.get("SmallResNet")
    assert not entry.trainable
    model = entry.build(tmp_path)  # the directory is ignored: nothing to train
    assert not any(tmp_path.iterdir())
    with pytest.raises(ValueError, match="SmallResNet is not trained"):
        zoo.evaluate_accuracy(model, entry)


def test_data_loaders_batch_the_chosen_split() -> None:
    data = zoo.digits_data(zoo.get("TeacherModel"))
    batches = list(data.loader("test", batch_size=100))
    assert [len(labels) for _images, labels in batches] == [100, 100, 100, 60]
    first = next(iter(data.loader("train", batch_size=16, shuffle=True, seed=3)))[1]
    assert torch.equal(first, next(iter(data.loader("train", batch_size=16, shuffle=True, seed=3)))[1])
    with pytest.raises(ValueError, match="split"):
        data.loader("validation")  # type: ignore[arg-type]
