"""The registry's cheap checks on real files: formats from content, malicious files, truncation, specs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine import test_registry_samples as samples
from workers.registry import ModelFormat, Rejected, check_upload, detect
from workers.zoo import InputSpec

LIMIT = 1 << 30
SPEC = InputSpec.from_json(samples.SPEC_784)
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def refusal(path: Path, **kwargs) -> Rejected:
    kwargs.setdefault("filename", path.name)
    with pytest.raises(Rejected) as info:
        check_upload(path, max_bytes=kwargs.pop("max_bytes", LIMIT), **kwargs)
    return info.value


@pytest.mark.parametrize(
    "name, make, kwargs, fmt",
    [
        ("m.pt", samples.torchscript_mlp, {"input_spec": SPEC}, ModelFormat.TORCHSCRIPT),
        ("m.pt2", samples.exported_mlp, {}, ModelFormat.PT2),
        ("m.onnx", samples.onnx_mlp, {}, ModelFormat.ONNX),
        (
            "m.safetensors",
            samples.safetensors_state_dict,
            {"architecture": "SimpleModel"},
            ModelFormat.SAFETENSORS,
        ),
    ],
)
def test_valid_files_pass_and_their_input_spec_is_settled(tmp_path, name, make, kwargs, fmt) -> None:
    checked = check_upload(write(tmp_path, name, make()), filename=name, max_bytes=LIMIT, **kwargs)
    assert checked.format is fmt
    # TorchScript gets the declared spec; .pt2 and ONNX record theirs; safetensors takes the zoo's.
    assert checked.input_spec == SPEC


def test_the_format_comes_from_the_content_not_the_name(tmp_path: Path) -> None:
    path = write(tmp_path, "model.bin", samples.onnx_mlp())
    assert detect(path).format is ModelFormat.ONNX
    assert check_upload(path, filename="model.bin", max_bytes=LIMIT).format is ModelFormat.ONNX


@pytest.mark.parametrize(
    "name, data, claimed, content",
    [
        ("image.onnx", PNG, "extension .onnx claims an ONNX model", "a PNG image"),
        (
            "notes.onnx",
            b"just some text, not a model\n",
            "extension .onnx claims an ONNX model",
            "a text file",
        ),
        (
            "weights.safetensors",
            b"\x00" * 64,
            "extension .safetensors claims a safetensors",
            "unrecognized binary",
        ),
    ],
)
def test_wrong_formats_name_the_claim_and_the_content(tmp_path, name, data, claimed, content) -> None:
    error = refusal(write(tmp_path, name, data))
    assert error.reason == "wrong format"
    assert claimed in str(error) and content in str(error)


def test_a_valid_file_of_another_format_than_claimed_is_refused(tmp_path: Path) -> None:
    error = refusal(write(tmp_path, "m.pt2", samples.onnx_mlp()))
    assert str(error) == (
        "wrong format: the extension .pt2 claims a torch.export program (.pt2), but the content is an ONNX model (.onnx)"
    )
    error = refusal(write(tmp_path, "m.bin", samples.onnx_mlp()), declared_format="safetensors")
    assert 'the format field "safetensors" claims' in str(error) and "ONNX" in str(error)


class TestMaliciousPicklesNeverRun:
    """Every file here would create `marker` if anything unpickled it."""

    @pytest.fixture
    def marker(self, tmp_path: Path) -> Path:
        return tmp_path / "pwned"

    def refused(self, tmp_path: Path, name: str, data: bytes, marker: Path, **kwargs) -> Rejected:
        error = refusal(write(tmp_path, name, data), **kwargs)
        assert not marker.exists()
        return error

    def test_a_raw_pickle_named_pt(self, tmp_path, marker) -> None:
        error = self.refused(tmp_path, "model.pt", samples.evil_pickle(marker), marker, input_spec=SPEC)
        assert error.reason == "wrong format" and "a Python pickle" in str(error)

    def test_a_raw_pickle_named_safetensors(self, tmp_path, marker) -> None:
        error = self.refused(
            tmp_path, "model.safetensors", samples.evil_pickle(marker), marker, architecture="SimpleModel"
        )
        assert error.reason == "wrong format" and "a Python pickle" in str(error)

    @pytest.mark.parametrize("name", ["model.pt", "model.pt2"])
    def test_a_torch_save_archive_with_data_pkl(self, tmp_path, marker, name) -> None:
        error = self.refused(tmp_path, name, samples.torch_save_archive(samples.evil_pickle(marker)), marker)
        assert error.reason == "wrong format" and "a torch.save checkpoint" in str(error)

    def test_a_torchscript_archive_whose_data_pkl_imports_open(self, tmp_path, marker) -> None:
        data = samples.torchscript_with_evil_data_pkl(marker)
        error = self.refused(tmp_path, "model.pt", data, marker, input_spec=SPEC)
        assert error.reason == "unsafe content" and "data.pkl imports io.open" in str(error)

    def test_torchscript_that_writes_a_file_while_loading(self, tmp_path, marker) -> None:
        data = samples.torchscript_writing_on_load(marker)
        error = self.refused(tmp_path, "model.pt", data, marker, input_spec=SPEC)
        assert error.reason == "unsafe content" and "__setstate__" in str(error)

    def test_torchscript_that_writes_a_file_when_run(self, tmp_path, marker) -> None:
        data = samples.torchscript_writing_on_forward(marker)
        error = self.refused(tmp_path, "model.pt", data, marker, input_spec=SPEC)
        assert error.reason == "unsafe content" and "torch.save" in str(error)

    def test_a_pt2_with_a_pickled_weight(self, tmp_path, marker) -> None:
        error = self.refused(tmp_path, "model.pt2", samples.pt2_with_pickled_weight(marker), marker)
        assert error.reason == "unsafe content" and "stored as a pickle" in str(error)

    def test_a_pt2_with_malicious_sample_inputs(self, tmp_path, marker) -> None:
        error = self.refused(tmp_path, "model.pt2", samples.pt2_with_evil_sample_inputs(marker), marker)
        assert error.reason == "unsafe content" and "io.open" in str(error)

    def test_a_pt2_whose_symbolic_shape_is_python(self, tmp_path, marker) -> None:
        error = self.refused(tmp_path, "model.pt2", samples.pt2_with_sympy_payload(marker), marker)
        assert error.reason == "unsafe content" and "'__import__'" in str(error)

    def test_a_pt2_whose_parameter_name_is_python(self, tmp_path, marker) -> None:
        data = samples.pt2_with_code_in_a_parameter_name(marker)
        error = self.refused(tmp_path, "model.pt2", data, marker)
        assert error.reason == "unsafe content" and "is not a plain name" in str(error)

    def test_a_pt2_carrying_a_native_library(self, tmp_path, marker) -> None:
        error = self.refused(tmp_path, "model.pt2", samples.pt2_with_native_library(), marker)
        assert error.reason == "unsafe content" and "native code" in str(error)


@pytest.mark.parametrize(
    "name, make, kwargs",
    [
        ("m.pt", samples.torchscript_mlp, {"input_spec": SPEC}),
        ("m.pt2", samples.exported_mlp, {}),
        ("m.onnx", samples.onnx_mlp, {}),
        ("m.safetensors", samples.safetensors_state_dict, {"architecture": "SimpleModel"}),
    ],
)
@pytest.mark.parametrize("keep", [0.5, 0.98])
def test_truncated_files_are_named_truncated(tmp_path, name, make, kwargs, keep) -> None:
    data = make()
    error = refusal(write(tmp_path, name, data[: int(len(data) * keep)]), **kwargs)
    assert error.reason == "truncated", str(error)


def test_too_large_files_are_refused_before_anything_else(tmp_path: Path) -> None:
    error = refusal(write(tmp_path, "m.onnx", samples.onnx_mlp()), max_bytes=1000)
    assert error.reason == "too large" and "limit of 1000 bytes" in str(error)


class TestSafetensorsStateDicts:
    def test_the_architecture_is_required(self, tmp_path: Path) -> None:
        error = refusal(write(tmp_path, "m.safetensors", samples.safetensors_state_dict()))
        assert error.reason == "missing information" and "SimpleModel" in str(error)

    def test_an_unknown_architecture_lists_the_zoo(self, tmp_path: Path) -> None:
        path = write(tmp_path, "m.safetensors", samples.safetensors_state_dict())
        error = refusal(path, architecture="ResNet9000")
        assert "ResNet9000" in str(error) and "TinyTransformer" in str(error)

    def test_keys_and_shapes_must_match_exactly(self, tmp_path: Path) -> None:
        path = write(tmp_path, "m.safetensors", samples.safetensors_state_dict("TeacherModel"))
        error = refusal(path, architecture="SimpleModel")
        assert error.reason == "invalid model"
        assert "fc1.weight is [512, 784], expected [256, 784]" in str(error)

    def test_missing_keys_are_named(self, tmp_path: Path) -> None:
        from safetensors.torch import save

        from workers import zoo

        state = zoo.get("StudentModel").build().state_dict()
        del state["fc3.bias"]
        error = refusal(write(tmp_path, "m.safetensors", save(state)), architecture="StudentModel")
        assert "missing keys fc3.bias" in str(error)


class TestInputSpecs:
    def test_torchscript_needs_a_declared_spec(self, tmp_path: Path) -> None:
        error = refusal(write(tmp_path, "m.pt", samples.torchscript_mlp()))
        assert error.reason == "missing information" and "input spec" in str(error)

    def test_a_spec_that_contradicts_the_onnx_graph_is_refused(self, tmp_path: Path) -> None:
        spec = InputSpec(shape=(None, 100), dtype="float32", low=0, high=1)
        error = refusal(write(tmp_path, "m.onnx", samples.onnx_mlp()), input_spec=spec)
        assert error.reason == "input spec does not fit"
        assert "takes shape [null, 784]" in str(error) and "the spec says [null, 100]" in str(error)

    def test_a_spec_that_contradicts_the_exported_program_is_refused(self, tmp_path: Path) -> None:
        spec = InputSpec(shape=(None, 784), dtype="int64", low=0, high=10)
        error = refusal(write(tmp_path, "m.pt2", samples.exported_mlp()), input_spec=spec)
        assert error.reason == "input spec does not fit" and "float32" in str(error)

    def test_an_onnx_graph_with_a_fixed_batch_is_refused(self, tmp_path: Path) -> None:
        error = refusal(write(tmp_path, "m.onnx", samples.onnx_mlp(dynamic_batch=False)))
        assert error.reason == "input spec does not fit" and "fixed batch of 2" in str(error)

    def test_one_sample_may_have_up_to_16_mi_elements(self, tmp_path: Path) -> None:
        path = write(tmp_path, "m.pt", samples.torchscript_mlp())
        at_limit = InputSpec(shape=(None, 4, 1 << 22), dtype="float32", low=0, high=1)
        assert (
            check_upload(path, filename="m.pt", max_bytes=LIMIT, input_spec=at_limit).input_spec == at_limit
        )
        over = InputSpec(shape=(None, 4, (1 << 22) + 1), dtype="float32", low=0, high=1)
        error = refusal(path, input_spec=over)
        assert error.reason == "input spec does not fit" and "at most 16777216" in str(error)
