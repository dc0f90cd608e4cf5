"""Real model files of every format, valid and malicious, for the registry tests (engine and Django).

The malicious ones carry a pickle whose unpickling creates a marker file, or TorchScript code that
writes one: a test passes only if that file never appears. The tests at the end prove the samples
are real threats: unpickling them the ordinary way does create the marker.
"""

from __future__ import annotations

import functools
import io
import json
import pickle
import zipfile
from pathlib import Path

import torch
from torch import nn

from workers import zoo

SPEC_784 = {"shape": [None, 784], "dtype": "float32", "low": 0, "high": 1}


class CreatesFile:
    """Unpickling this calls open(path, "w"): the file appearing is the proof that code ran."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def evil_pickle(marker: Path) -> bytes:
    return pickle.dumps(CreatesFile(marker), protocol=4)


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _rewrite_zip(data: bytes, replace: dict[str, bytes], add: dict[str, bytes] | None = None) -> bytes:
    """A copy of a zip archive with some entries' contents replaced (matched by name suffix)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(buffer, "w") as target:
        for info in source.infolist():
            content = source.read(info)
            for suffix, new in replace.items():
                if info.filename.endswith(suffix):
                    content = new
            target.writestr(info, content)
        for name, content in (add or {}).items():
            target.writestr(name, content)
    return buffer.getvalue()


def torch_save_archive(data_pkl: bytes, root: str = "archive") -> bytes:
    """The layout torch.save writes: root/data.pkl, root/version, root/byteorder (no code/)."""
    return _zip({f"{root}/data.pkl": data_pkl, f"{root}/version": b"3\n", f"{root}/byteorder": b"little"})


# --- valid files (cached: exporting takes seconds) -------------------------------------------------


@functools.cache
def torchscript_mlp() -> bytes:
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(zoo.get("SimpleModel").build()), buffer)
    return buffer.getvalue()


@functools.cache
def exported_mlp() -> bytes:
    entry = zoo.get("SimpleModel")
    batch = torch.export.Dim("batch", min=1, max=4096)
    program = torch.export.export(entry.build(), (entry.input_spec.make(2),), dynamic_shapes=({0: batch},))
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    return buffer.getvalue()


@functools.cache
def onnx_mlp(dynamic_batch: bool = True) -> bytes:
    entry = zoo.get("SimpleModel")
    buffer = io.BytesIO()
    # The legacy (TorchScript-based) exporter: the dynamo one needs several seconds per export.
    torch.onnx.export(
        entry.build(),
        (entry.input_spec.make(2),),
        buffer,
        input_names=["x"],
        output_names=["logits"],
        dynamic_axes={"x": {0: "batch"}} if dynamic_batch else None,
        dynamo=False,
    )
    return buffer.getvalue()


@functools.cache
def safetensors_state_dict(name: str = "SimpleModel") -> bytes:
    from safetensors.torch import save

    return save({k: v.contiguous() for k, v in zoo.get(name).build().state_dict().items()})


# --- malicious files ------------------------------------------------------------------------------


def torchscript_with_evil_data_pkl(marker: Path) -> bytes:
    """A genuine TorchScript archive whose data.pkl is replaced by the file-creating pickle."""
    return _rewrite_zip(torchscript_mlp(), {"/data.pkl": evil_pickle(marker)})


class WritesOnLoad(nn.Module):
    """TorchScript whose __setstate__ (run by torch.jit.load) writes a file with torch.save."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker
        self.scale = 2.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale

    @torch.jit.export
    def __getstate__(self) -> tuple[str, float, bool]:
        return (self.marker, self.scale, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[str, float, bool]) -> None:
        torch.save(torch.zeros(1), state[0])
        self.marker = state[0]
        self.scale = state[1]
        self.training = state[2]


class WritesOnForward(nn.Module):
    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch.save(x, self.marker)
        return x


def torchscript_writing_on_load(marker: Path) -> bytes:
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(WritesOnLoad(str(marker))), buffer)
    return buffer.getvalue()


def torchscript_writing_on_forward(marker: Path) -> bytes:
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(WritesOnForward(str(marker))), buffer)
    return buffer.getvalue()


def pt2_with_pickled_weight(marker: Path) -> bytes:
    """A genuine .pt2 whose first weight is flagged use_pickle and holds the file-creating pickle
    (torch.export.load would torch.load it with weights_only=False)."""
    data = exported_mlp()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        config_name = next(n for n in archive.namelist() if n.endswith("model_weights_config.json"))
        config = json.loads(archive.read(config_name))
    first = next(iter(config["config"].values()))
    first["use_pickle"] = True
    return _rewrite_zip(
        data,
        {
            "model_weights_config.json": json.dumps(config).encode(),
            f"data/weights/{first['path_name']}": torch_save_archive(evil_pickle(marker)),
        },
    )


def pt2_with_evil_sample_inputs(marker: Path) -> bytes:
    """A genuine .pt2 whose sample inputs are the file-creating pickle: torch.export.load tries
    weights_only=True, fails, and silently retries with weights_only=False."""
    return _rewrite_zip(
        exported_mlp(), {"data/sample_inputs/model.pt": torch_save_archive(evil_pickle(marker))}
    )


def pt2_with_sympy_payload(marker: Path) -> bytes:
    """A .pt2 whose symbolic batch size is Python that sympify would evaluate."""
    payload = f"__import__('builtins').open('{marker}', 'w')"
    data = exported_mlp()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        name = next(n for n in archive.namelist() if n.endswith("models/model.json"))
        program = archive.read(name).decode()
    program = program.replace("Symbol('s", payload + " and Symbol('s", 1)
    return _rewrite_zip(data, {"models/model.json": program.encode()})


def pt2_with_code_in_a_parameter_name(marker: Path) -> bytes:
    """A .pt2 with no pickle at all, whose parameter name is Python: torch's FX code generator
    writes it into the module's source unescaped (getattr(self.fc1, "<name>")), so it runs when
    the program is turned into a module."""
    name = f'weight") if getattr(__import__("builtins"), "open")("{marker}", "w") else getattr(self, "y'
    data = exported_mlp()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        program_name = next(n for n in names if n.endswith("models/model.json"))
        config_name = next(n for n in names if n.endswith("model_weights_config.json"))
        program = json.loads(archive.read(program_name))
        config = json.loads(archive.read(config_name))
    for spec in program["graph_module"]["signature"]["input_specs"]:
        if spec.get("parameter", {}).get("parameter_name") == "fc1.weight":
            spec["parameter"]["parameter_name"] = f"fc1.{name}"
    config["config"][f"fc1.{name}"] = config["config"].pop("fc1.weight")
    return _rewrite_zip(
        data,
        {
            "models/model.json": json.dumps(program).encode(),
            "model_weights_config.json": json.dumps(config).encode(),
        },
    )


def pt2_with_native_library() -> bytes:
    root = zipfile.ZipFile(io.BytesIO(exported_mlp())).namelist()[0].split("/")[0]
    return _rewrite_zip(exported_mlp(), {}, add={f"{root}/data/aotinductor/model/model.so": b"\x7fELF"})


# --- the samples are what they claim to be --------------------------------------------------------


def test_the_malicious_pickle_really_creates_its_file_when_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    pickle.loads(evil_pickle(marker))  # the ordinary, unsafe way: this is what the registry never does
    assert marker.exists()


def test_the_valid_samples_run(tmp_path: Path) -> None:
    x = zoo.get("SimpleModel").input_spec.make(3)
    (tmp_path / "m.pt").write_bytes(torchscript_mlp())
    assert torch.jit.load(str(tmp_path / "m.pt"))(x).shape == (3, 10)
    header_len = int.from_bytes(safetensors_state_dict()[:8], "little")
    assert json.loads(safetensors_state_dict()[8 : 8 + header_len])["fc1.weight"]["shape"] == [256, 784]
