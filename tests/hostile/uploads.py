"""The hostile upload corpus: every file (and form field) POST /api/models must refuse, generated here.

Each case's ``make(marker, bombs)`` returns the file's bytes: marker is the file a malicious payload
creates if anything runs it, bombs the session's directory of large generated archives. ``reason``
is the refusal's category, the start of the 400's error text. ``bomb`` cases deflate to hundreds of
MiB or more and are run with the web process's memory watched.
"""

from __future__ import annotations

import dataclasses
import io
import json
import pickle
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.engine import test_registry_samples as samples
from tests.hostile import zipcraft as z

SPEC = json.dumps(samples.SPEC_784)
HUGE_SPEC = json.dumps({**samples.SPEC_784, "shape": [None, 2**26]})
BOMB_MIB = 4095  # the 4 GiB (just under, so the entry needs no zip64 fields)
SAMPLE_BOMB_MIB = 1024


@dataclass(frozen=True)
class Upload:
    id: str
    filename: str
    make: Callable[[Path, Path], bytes]
    reason: str
    fields: dict[str, str] = field(default_factory=dict)
    bomb: bool = False


def _root(archive: bytes) -> str:
    return zipfile.ZipFile(io.BytesIO(archive)).namelist()[0].split("/")[0]


def _pt2() -> list[z.Entry]:
    return z.entries_of(samples.exported_mlp())


def _ts() -> list[z.Entry]:
    return z.entries_of(samples.torchscript_mlp())


def _json_entry(archive: bytes, suffix: str) -> dict:
    with zipfile.ZipFile(io.BytesIO(archive)) as source:
        return json.loads(source.read(next(n for n in source.namelist() if n.endswith(suffix))))


def _safetensors(header: object, data: bytes = b"", header_len: int | None = None) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if header_len is None else header_len) + raw + data


def _onnx_with_external_data(location: str) -> bytes:
    import onnx

    model = onnx.load_from_string(samples.onnx_mlp())
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "4096")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return model.SerializeToString()


def _pt2_recording_a_huge_input() -> bytes:
    program = _json_entry(samples.exported_mlp(), "models/model.json")
    graph = program["graph_module"]
    specs = graph["signature"]["input_specs"]
    name = next(s["user_input"]["arg"]["as_tensor"]["name"] for s in specs if "user_input" in s)
    graph["graph"]["tensor_values"][name]["sizes"][1] = {"as_int": 2**26}
    return z.build(z.replace(_pt2(), "models/model.json", z.stored("", json.dumps(program).encode())))


def _pt2_with_sample_inputs(inner: list[z.Entry]) -> bytes:
    return z.build(z.replace(_pt2(), "data/sample_inputs/model.pt", z.stored("", z.build(inner))))


def _many_entries(count: int, declared_count: int | None = None) -> bytes:
    entries = [z.stored(f"model/extra/e{i}", b"x") for i in range(count)]
    return z.build(entries, declared_count=declared_count)


def _source_budget() -> bytes:
    # 300 sources of 1 MiB of blank lines each: each passes alone, together they take a minute to parse.
    blank = z.deflated("", b"\n" * z.MIB)
    extra = [dataclasses.replace(blank, name=f"archive/code/__torch__/pad_{i}.py") for i in range(300)]
    return z.build(_ts() + extra)


def _read_budget() -> bytes:
    # Five 30 MiB debug pickles (of zeros: 30 KiB each deflated): each passes alone, not together.
    pickled = z.deflated("", pickle.dumps(bytes(30 * z.MIB), protocol=4))
    extra = [
        dataclasses.replace(pickled, name=f"archive/code/__torch__/pad_{i}.py.debug_pkl") for i in range(5)
    ]
    return z.build(_ts() + extra)


def _broken_local_header(archive: bytes, name: str) -> bytes:
    data = bytearray(archive)
    at = data.find(name.encode()) - 30  # the first occurrence is the local header's copy
    data[at : at + 4] = b"XX\x03\x04"
    return bytes(data)


def _bzip2_entry(name: str, content: bytes) -> z.Entry:
    import bz2
    import zlib

    return z.Entry(name, bz2.compress(content), zipfile.ZIP_BZIP2, zlib.crc32(content), len(content))


def _with(entries: list[z.Entry], extra: z.Entry) -> bytes:
    return z.build([*entries, extra])


def _bomb_file(name: str) -> Callable[[Path, Path], bytes]:
    return lambda marker, bombs: (bombs / name).read_bytes()


def write_bombs(directory: Path) -> None:
    """The large archives, once per session (a few MB each on disk)."""
    (directory / "archive_format.pt2").write_bytes(
        z.build(z.replace(_pt2(), "/archive_format", z.zeros_bomb("", BOMB_MIB)))
    )
    (directory / "sample_inputs.pt2").write_bytes(
        _pt2_with_sample_inputs(
            [z.zeros_bomb("archive/data.pkl", SAMPLE_BOMB_MIB), z.stored("archive/version", b"3")]
        )
    )


def _truncated(make: Callable[[], bytes]) -> Callable[[Path, Path], bytes]:
    return lambda marker, bombs: make()[: len(make()) // 2]


UPLOADS: list[Upload] = [
    # --- code that would run: pickles, TorchScript, torch.export -------------------------------------
    Upload("raw pickle named .pt", "model.pt", lambda m, b: samples.evil_pickle(m), "wrong format", {"input_spec": SPEC}),
    Upload("raw pickle named .safetensors", "m.safetensors", lambda m, b: samples.evil_pickle(m), "wrong format", {"architecture": "SimpleModel"}),
    Upload("torch.save checkpoint as .pt", "m.pt", lambda m, b: samples.torch_save_archive(samples.evil_pickle(m)), "wrong format"),
    Upload("torch.save checkpoint as .pt2", "m.pt2", lambda m, b: samples.torch_save_archive(samples.evil_pickle(m)), "wrong format"),
    Upload("TorchScript with a pickle gadget in data.pkl", "m.pt", lambda m, b: samples.torchscript_with_evil_data_pkl(m), "unsafe content", {"input_spec": SPEC}),
    Upload("TorchScript __setstate__ writing a file", "m.pt", lambda m, b: samples.torchscript_writing_on_load(m), "unsafe content", {"input_spec": SPEC}),
    Upload("TorchScript forward writing a file", "m.pt", lambda m, b: samples.torchscript_writing_on_forward(m), "unsafe content", {"input_spec": SPEC}),
    Upload("TorchScript source with null bytes", "m.pt", lambda m, b: _with(_ts(), z.deflated("archive/code/__torch__/nul.py", b"x = 1\x00\n")), "invalid model", {"input_spec": SPEC}),
    Upload(".pt2 with a pickled weight", "m.pt2", lambda m, b: samples.pt2_with_pickled_weight(m), "unsafe content"),
    Upload(".pt2 with pickle-gadget sample inputs", "m.pt2", lambda m, b: samples.pt2_with_evil_sample_inputs(m), "unsafe content"),
    Upload(".pt2 with Python in a symbolic shape", "m.pt2", lambda m, b: samples.pt2_with_sympy_payload(m), "unsafe content"),
    Upload(".pt2 with Python in a parameter name", "m.pt2", lambda m, b: samples.pt2_with_code_in_a_parameter_name(m), "unsafe content"),
    Upload(".pt2 with an AOTInductor .so", "m.pt2", lambda m, b: samples.pt2_with_native_library(), "unsafe content"),
    Upload(".pt2 program nested 100k deep", "m.pt2", lambda m, b: z.build(z.replace(_pt2(), "models/model.json", z.stored("", b"[" * 100_000 + b"]" * 100_000))), "invalid model"),
    # --- ONNX and safetensors that lie ------------------------------------------------------------
    Upload("ONNX external data ../ outside", "m.onnx", lambda m, b: _onnx_with_external_data("../../../../etc/passwd"), "unsafe content"),
    Upload("ONNX external data at an absolute path", "m.onnx", lambda m, b: _onnx_with_external_data("/etc/passwd"), "unsafe content"),
    Upload("safetensors header longer than the file", "m.safetensors", lambda m, b: _safetensors({"w": {}}, header_len=1 << 20), "truncated", {"architecture": "SimpleModel"}),
    Upload("safetensors offsets past the end", "m.safetensors", lambda m, b: _safetensors({"w": {"dtype": "F32", "shape": [1024, 1024], "data_offsets": [0, 4 << 20]}}, bytes(16)), "truncated", {"architecture": "SimpleModel"}),
    Upload("safetensors 2**80-element tensor", "m.safetensors", lambda m, b: _safetensors({"w": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 2**82]}}, bytes(16)), "truncated", {"architecture": "SimpleModel"}),
    Upload("safetensors overlapping tensors", "m.safetensors", lambda m, b: _safetensors({"a": {"dtype": "U8", "shape": [8], "data_offsets": [0, 8]}, "b": {"dtype": "U8", "shape": [8], "data_offsets": [4, 12]}}, bytes(12)), "invalid model", {"architecture": "SimpleModel"}),
    Upload("safetensors header nested 100k deep", "m.safetensors", lambda m, b: _safetensors(b'{"a":' * 100_000 + b"1" + b"}" * 100_000), "invalid model", {"architecture": "SimpleModel"}),
    Upload("safetensors header claiming 17 MiB", "m.safetensors", lambda m, b: _safetensors(b"{}", header_len=17 << 20), "too large", {"architecture": "SimpleModel"}),
    Upload("safetensors header length 2**64-1", "m.safetensors", lambda m, b: _safetensors(b"{}", header_len=2**64 - 1), "wrong format", {"architecture": "SimpleModel"}),
    # --- names that leave the archive -------------------------------------------------------------
    Upload(".pt2 entry ../../", "m.pt2", lambda m, b: _with(_pt2(), z.stored(f"{_root(samples.exported_mlp())}/../../evil.py", b"x")), "unsafe content"),
    Upload("TorchScript code/../../../", "m.pt", lambda m, b: _with(_ts(), z.stored("archive/code/../../../evil.py", b"x = 1\n")), "unsafe content", {"input_spec": SPEC}),
    Upload("zip entry at an absolute path", "m.pt", lambda m, b: _with(_ts(), z.stored("/etc/cron.d/perfmon", b"* * * * * root id\n")), "unsafe content", {"input_spec": SPEC}),
    Upload("zip entry with backslashes", "m.pt", lambda m, b: _with(_ts(), z.stored("archive\\..\\..\\evil.py", b"x")), "unsafe content", {"input_spec": SPEC}),
    # --- declared shapes too large to run ----------------------------------------------------------
    Upload("TorchScript with [null, 2**26]", "m.pt", lambda m, b: samples.torchscript_mlp(), "input spec does not fit", {"input_spec": HUGE_SPEC}),
    Upload("safetensors with [null, 2**26]", "m.safetensors", lambda m, b: samples.safetensors_state_dict(), "input spec does not fit", {"architecture": "SimpleModel", "input_spec": HUGE_SPEC}),
    Upload(".pt2 recording a [batch, 2**26] input", "m.pt2", lambda m, b: _pt2_recording_a_huge_input(), "input spec does not fit"),
    Upload("spec with 9 dimensions", "m.pt", lambda m, b: samples.torchscript_mlp(), "input spec does not fit", {"input_spec": json.dumps({**samples.SPEC_784, "shape": [None] + [1] * 8})}),
    Upload("spec with high 1e999 (inf)", "m.pt", lambda m, b: samples.torchscript_mlp(), "input spec does not fit", {"input_spec": '{"shape": [null, 784], "dtype": "float32", "low": 0, "high": 1e999}'}),
    Upload("spec with NaN low", "m.pt", lambda m, b: samples.torchscript_mlp(), "invalid request", {"input_spec": '{"shape": [null, 784], "dtype": "float32", "low": NaN, "high": 1}'}),
    Upload("spec with a 400-digit low", "m.pt", lambda m, b: samples.torchscript_mlp(), "invalid request", {"input_spec": '{"shape": [null, 784], "dtype": "float32", "low": -1' + "0" * 400 + ', "high": 1}'}),
    Upload("spec with a 5000-digit dimension", "m.pt", lambda m, b: samples.torchscript_mlp(), "invalid request", {"input_spec": '{"shape": [null, ' + "9" * 5000 + '], "dtype": "float32", "low": 0, "high": 1}'}),
    Upload("spec nested 100k deep", "m.pt", lambda m, b: samples.torchscript_mlp(), "invalid request", {"input_spec": "[" * 100_000}),
    # --- zip bombs ---------------------------------------------------------------------------------
    Upload(".pt2 archive_format deflating to 4 GiB", "m.pt2", _bomb_file("archive_format.pt2"), "invalid model", bomb=True),
    Upload(".pt2 sample inputs: data.pkl deflating to 1 GiB", "m.pt2", _bomb_file("sample_inputs.pt2"), "too large", bomb=True),
    Upload(".pt2 sample inputs: 1 GiB data.pkl claiming 821 bytes", "m.pt2", lambda m, b: _pt2_with_sample_inputs([z.zeros_bomb("archive/data.pkl", 1024, local_size=821, directory_size=821)]), "invalid model", bomb=True),
    Upload("nested: zip bomb in data.pkl in the sample inputs", "m.pt2", lambda m, b: _pt2_with_sample_inputs([z.stored("archive/data.pkl", z.build([z.zeros_bomb("x/data.pkl", 1024)]))]), "invalid model", bomb=True),
    Upload("TorchScript source: 1 GiB, directory says 697 bytes", "m.pt", lambda m, b: z.build(z.replace(_ts(), "mlp.py", z.zeros_bomb("", 1024, directory_size=697))), "invalid model", {"input_spec": SPEC}, bomb=True),
    Upload("TorchScript source: 1 GiB, local header says 697 bytes", "m.pt", lambda m, b: z.build(z.replace(_ts(), "mlp.py", z.zeros_bomb("", 1024, local_size=697))), "too large", {"input_spec": SPEC}, bomb=True),
    Upload("TorchScript data.pkl deflating to 1 GiB", "m.pt", lambda m, b: z.build(z.replace(_ts(), "/data.pkl", z.zeros_bomb("", 1024))), "invalid model", {"input_spec": SPEC}, bomb=True),
    Upload("TorchScript: 300 sources of 1 MiB each", "m.pt", lambda m, b: _source_budget(), "too large", {"input_spec": SPEC}, bomb=True),
    Upload("TorchScript: 5 debug pickles of 30 MiB each", "m.pt", lambda m, b: _read_budget(), "too large", {"input_spec": SPEC}, bomb=True),
    Upload("zip with 10,000 entries", "m.pt2", lambda m, b: _many_entries(10_000), "invalid model"),
    Upload("zip with 10,000 entries, end record says 10", "m.pt2", lambda m, b: _many_entries(10_000, declared_count=10), "invalid model"),
    Upload("entry name flagged UTF-8 that is not", "m.pt", lambda m, b: _with(_ts(), dataclasses.replace(z.stored("archive/code/\udcff.py", b""), flags=0x800)), "invalid model", {"input_spec": SPEC}),
    Upload("TorchScript data.pkl without its local header", "m.pt", lambda m, b: _broken_local_header(z.build(_ts()), "archive/data.pkl"), "invalid model", {"input_spec": SPEC}),
    Upload(".pt2 with a bzip2 entry", "m.pt2", lambda m, b: z.build(z.replace(_pt2(), "/archive_format", _bzip2_entry("", b"pt2"))), "invalid model"),
    # --- cut short, empty, garbage -----------------------------------------------------------------
    Upload("truncated .pt", "m.pt", _truncated(samples.torchscript_mlp), "truncated", {"input_spec": SPEC}),
    Upload("truncated .pt2", "m.pt2", _truncated(samples.exported_mlp), "truncated"),
    Upload("truncated .onnx", "m.onnx", _truncated(samples.onnx_mlp), "truncated"),
    Upload("truncated .safetensors", "m.safetensors", _truncated(samples.safetensors_state_dict), "truncated", {"architecture": "SimpleModel"}),
    Upload("zip magic then garbage", "m.pt2", lambda m, b: b"PK\x03\x04" + bytes(range(256)) * 4, "truncated"),
    Upload("zero-byte .pt2", "m.pt2", lambda m, b: b"", "wrong format"),
    Upload("zero-byte, no extension", "model", lambda m, b: b"", "wrong format"),
    Upload("PNG at a traversal filename", "../../../etc/passwd.onnx", lambda m, b: b"\x89PNG\r\n\x1a\n" + bytes(64), "wrong format"),
    # --- form fields -------------------------------------------------------------------------------
    Upload("parent version past SQLite's INTEGER", "m.onnx", lambda m, b: samples.onnx_mlp(), "invalid request", {"parent_version": "99999999999999999999"}),
    Upload("name ../../etc", "m.onnx", lambda m, b: samples.onnx_mlp(), "invalid request", {"name": "../../etc"}),
    Upload("name with a NUL", "m.onnx", lambda m, b: samples.onnx_mlp(), "invalid request", {"name": "a\x00b"}),
    Upload("unknown format field", "m.onnx", lambda m, b: samples.onnx_mlp(), "wrong format", {"format": "exe"}),
    Upload("architecture with a non-safetensors file", "m.onnx", lambda m, b: samples.onnx_mlp(), "wrong format", {"architecture": "SimpleModel"}),
]  # fmt: skip
