"""torch.export programs (.pt2), checked and loaded without ``torch.export.load``.

Why not ``torch.export.load`` (checked against torch 2.13's source, torch/export/pt2_archive/_package.py
and torch/_export/serde/serialize.py): it is documented as "uses pickle under the hood ... never load
data from an untrusted source", and it runs code from the file in several ways:
  * weights and constants marked ``use_pickle`` go through torch's full unpickler (weights_only off);
    "opaque" constants through ``pickle.loads``; custom objects through ``torch._C._pickle_load_obj``;
  * the sample inputs (and legacy state dicts) go through ``deserialize_torch_artifact``, which tries
    ``weights_only=True`` and, when that fails, silently retries with ``weights_only=False``;
  * entries under ``data/aotinductor/`` are compiled shared libraries that it dlopens;
  * symbolic shape strings are parsed with ``sympy.sympify`` (which evaluates Python), and
    ``guards_code`` strings become Python source for the module's input checks;
  * even with no pickle at all, names reach Python source: FX writes a parameter name that is not
    an identifier as ``getattr(self.fc1, "<name>")`` without escaping, so a name holding a quote
    runs code when the program becomes a module (we made one create a file).

So we read the archive ourselves: plain ``zipfile`` and ``json``, an allow-list of entries, raw
(never pickled) tensor bytes, operator targets limited to ``aten``/``prims`` and symbolic-int
arithmetic, every ``sympify`` input tokenized against an allow-list, every other string a plain
dotted name, no guard code and no node metadata (stack traces become comments in generated code).
Only then is the JSON handed to torch's
``ExportedProgramDeserializer``. The sample inputs are never read (the declared input spec replaces
them), but their pickle is scanned, so a file carrying a malicious one is refused rather than stored.

``check_archive`` needs no torch (it runs in the web request); ``load_program`` runs in the worker.
"""

from __future__ import annotations

import io
import json
import re
import sys
import tokenize
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workers.registry.errors import Rejected
from workers.registry.pickles import disallowed_globals
from workers.registry.spec import GraphInput
from workers.registry.zips import SafeZip

if TYPE_CHECKING:
    from torch import nn

ARCHIVE_VERSION = "0"  # torch.export.pt2_archive.constants.ARCHIVE_VERSION_VALUE in torch 2.13
MODEL_NAME = "model"  # torch.export.save stores its one program under this name

SAMPLE_INPUTS = f"data/sample_inputs/{MODEL_NAME}.pt"
# What the checks read of one entry, at most (the whole archive may be up to the upload limit).
MAX_SMALL_ENTRY_BYTES = 1 << 10  # archive_format, archive_version, byteorder
MAX_JSON_BYTES = 32 << 20  # the program and the payload configs (a large LLM's program is a few MB)
MAX_SAMPLE_INPUTS_BYTES = 64 << 20
MAX_PICKLE_BYTES = 16 << 20  # the sample inputs' data.pkl (tensors live beside it, not in it)

_ENTRY_PATTERNS = [
    re.compile(p)
    for p in (
        r"archive_format",
        r"archive_version",
        r"byteorder",
        r"\.data/version",
        r"\.data/serialization_id",
        r"\.format_version",
        r"\.storage_alignment",
        rf"models/{MODEL_NAME}\.json",
        rf"data/weights/{MODEL_NAME}_weights_config\.json",
        r"data/weights/weight_\d+",
        rf"data/constants/{MODEL_NAME}_constants_config\.json",
        r"data/constants/tensor_\d+",
        rf"data/sample_inputs/{MODEL_NAME}\.pt",
        r"extra/[A-Za-z0-9_.\-/]+",
    )
]
# Entries that torch.export.load would execute or unpickle, named so the refusal can say why.
_EXECUTABLE_PREFIXES = {
    "data/aotinductor/": "compiled AOTInductor libraries (native code)",
    "data/executorch/": "ExecuTorch programs",
    "data/mtia": "MTIA artifacts",
    "xl_model_weights/": "external weight files",
}

_TARGET = re.compile(
    r"torch\.ops\.(aten|prims)\.[A-Za-z0-9_]+\.[A-Za-z0-9_]+"
    r"|_operator\.(add|sub|mul|floordiv|truediv|mod|neg|pow|eq|ne|lt|le|gt|ge|and_|or_|not_|getitem)"
    r"|torch\.sym_(float|int|max|min|not|ite|sqrt|sum)"
    r"|math\.(ceil|floor|trunc|sqrt)"
)
# aten ops that touch the file system.
_DENIED_OPS = ("from_file", ".save.", "_save_")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOTTED_NAME = re.compile(r"[A-Za-z0-9_.]*")
# Strings torch only repr()s into generated code, or parses as JSON against its own type registry.
_FREE_TEXT_KEYS = frozenset({"torch_version", "as_string", "as_strings", "in_spec", "out_spec"})

# Names a srepr()-printed sympy expression may use: sympy's classes, torch's sympy functions and
# the assumption keywords. Anything else (eval, __import__, getattr, ...) is refused before sympify.
_SYMPY_NAMES = frozenset(
    """Symbol Dummy Integer Float Rational Half One Zero NegativeOne Infinity NegativeInfinity oo zoo nan
    Add Mul Pow Mod Max Min Abs floor ceiling sign Eq Ne Lt Le Gt Ge Equality Unequality StrictLessThan
    StrictGreaterThan LessThan GreaterThan And Or Not Xor true false BooleanTrue BooleanFalse True False
    Piecewise ExprCondPair ITE precision FloorDiv ModularIndexing Where PythonMod CleanDiv CeilDiv
    CeilToInt FloorToInt LShift RShift IsNonOverlappingAndDenseIndicator TruncToFloat TruncToInt
    RoundToInt RoundDecimal ToFloat Identity PowByNatural FloatPow FloatTrueDiv IntTrueDiv
    BitwiseFn_bitwise_and BitwiseFn_bitwise_or BitwiseFn_bitwise_xor
    OpaqueUnaryFn_sqrt OpaqueUnaryFn_exp OpaqueUnaryFn_log OpaqueUnaryFn_log2
    algebraic antihermitian commutative complex composite even extended_negative extended_nonnegative
    extended_nonpositive extended_nonzero extended_positive extended_real finite hermitian imaginary
    infinite integer irrational negative noninteger nonnegative nonpositive nonzero odd polar positive
    prime rational real transcendental zero""".split()  # noqa: SIM905 (a word list reads better)
)
_SYMPY_OPS = frozenset(
    {"(", ")", ",", "=", "+", "-", "*", "/", "**", "%", "<", ">", "<=", ">=", "==", "!=", "&", "|", "~"}
)
_SYMPY_STRING = re.compile(r"'[A-Za-z0-9_.+\-]*'")

# Weights-only unpickling needs no more than these to rebuild a tuple of tensors.
_SAMPLE_INPUT_GLOBALS = frozenset(
    {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch.Size"}
)

# schema.ScalarType values of the dtypes an input spec can have.
_SPEC_DTYPES = {7: "float32", 5: "int64"}
_STRIDED_LAYOUT = 7


@dataclass(frozen=True)
class Pt2Archive:
    """What check_archive read: the program JSON and its two payload configs, already vetted."""

    root: str
    program: dict[str, Any]
    weights: dict[str, Any]
    constants: dict[str, Any]
    graph_input: GraphInput | None  # the input the program records


def check_archive(path: Path, root: str) -> Pt2Archive:
    """Vet a .pt2 archive without executing or unpickling anything; raises Rejected with the reason."""
    with SafeZip(path, "the .pt2 archive") as archive:
        infos = archive.by_name
        for name, info in infos.items():
            _check_entry(name[len(root) :], info)

        def read(entry: str, limit_bytes: int = MAX_SMALL_ENTRY_BYTES) -> bytes:
            if root + entry not in infos:
                raise Rejected("invalid model", f"the .pt2 archive lacks {entry}")
            return archive.read(infos[root + entry], limit_bytes)

        if read("archive_format").strip() != b"pt2":
            raise Rejected("invalid model", "archive_format is not pt2")
        version = read("archive_version").decode(errors="replace").strip()
        if version != ARCHIVE_VERSION:
            raise Rejected(
                "invalid model",
                f"pt2 archive version {version[:20]!r}; this server reads {ARCHIVE_VERSION!r}",
            )
        if (
            root + "byteorder" in infos
            and read("byteorder").decode(errors="replace").strip() != sys.byteorder
        ):
            raise Rejected(
                "invalid model", f"the archive's byte order is not this machine's ({sys.byteorder})"
            )
        program = _json(read(f"models/{MODEL_NAME}.json", MAX_JSON_BYTES), "the program")
        weights = _payload_config(
            read(f"data/weights/{MODEL_NAME}_weights_config.json", MAX_JSON_BYTES), "weight", infos, root
        )
        constants = _payload_config(
            read(f"data/constants/{MODEL_NAME}_constants_config.json", MAX_JSON_BYTES), "tensor", infos, root
        )
        if root + SAMPLE_INPUTS in infos:
            _check_sample_inputs(read(SAMPLE_INPUTS, MAX_SAMPLE_INPUTS_BYTES))
    _check_program(program)
    return Pt2Archive(root, program, weights, constants, _graph_input(program))


def _check_entry(relative: str, info: zipfile.ZipInfo) -> None:
    for prefix, what in _EXECUTABLE_PREFIXES.items():
        if relative.startswith(prefix):
            raise Rejected(
                "unsafe content",
                f"the .pt2 archive holds {what} ({relative}); only plain programs are accepted",
            )
    if relative.endswith("/"):
        return
    if not any(pattern.fullmatch(relative) for pattern in _ENTRY_PATTERNS):
        raise Rejected("unsafe content", f"unexpected entry {relative!r} in the .pt2 archive")
    if info.compress_type != zipfile.ZIP_STORED:
        # torch writes every entry uncompressed; a compressed one could be a zip bomb.
        raise Rejected(
            "invalid model", f"entry {relative!r} is compressed; torch.export.save never compresses"
        )


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:
        raise Rejected("invalid model", f"{what} is not valid JSON: {exc}") from None


def _payload_config(data: bytes, prefix: str, infos: dict[str, zipfile.ZipInfo], root: str) -> dict[str, Any]:
    config = _json(data, f"the {prefix} config")
    entries = config.get("config") if isinstance(config, dict) else None
    if not isinstance(entries, dict):
        raise Rejected("invalid model", f"the {prefix} config has no 'config' object")
    directory = "data/weights/" if prefix == "weight" else "data/constants/"
    for fqn, meta in entries.items():
        if not _DOTTED_NAME.fullmatch(fqn):
            raise Rejected("unsafe content", f"{prefix} name {fqn[:80]!r} is not a plain name")
        if not isinstance(meta, dict):
            raise Rejected("invalid model", f"{prefix} {fqn!r}: bad config entry")
        if meta.get("use_pickle"):
            raise Rejected(
                "unsafe content", f"{prefix} {fqn!r} is stored as a pickle; only raw tensors are accepted"
            )
        path_name = meta.get("path_name")
        if not isinstance(path_name, str) or not re.fullmatch(rf"{prefix}_\d+", path_name):
            raise Rejected(
                "unsafe content",
                f"{prefix} {fqn!r} is stored as {path_name!r}; only raw tensors are accepted",
            )
        if root + directory + path_name not in infos:
            raise Rejected(
                "truncated", f"{prefix} {fqn!r}: {directory}{path_name} is missing from the archive"
            )
        tensor_meta = meta.get("tensor_meta")
        if not isinstance(tensor_meta, dict) or tensor_meta.get("layout") != _STRIDED_LAYOUT:
            raise Rejected("invalid model", f"{prefix} {fqn!r} is not a plain strided tensor")
    return entries


def _check_sample_inputs(data: bytes) -> None:
    # A zip in the zip: its pickles are read with the same caps (a deflated 1 GiB data.pkl here
    # once cost the web process 2.2 GB).
    bad: list[str] = []
    with SafeZip(data, "the sample inputs (a torch.save archive)") as inner:
        for info in inner.infos:
            if info.filename.endswith(".pkl"):
                data = inner.read(info, MAX_PICKLE_BYTES)
                try:
                    bad += disallowed_globals(data, _sample_input_global_ok)
                except ValueError as exc:
                    raise Rejected(
                        "invalid model", f"the sample inputs are not a torch.save archive: {exc}"
                    ) from None
    if bad:
        raise Rejected("unsafe content", f"the sample inputs' pickle imports {', '.join(sorted(set(bad)))}")


def _sample_input_global_ok(name: str) -> bool:
    return name in _SAMPLE_INPUT_GLOBALS or re.fullmatch(r"torch\.[A-Za-z0-9]+Storage", name) is not None


def _check_program(program: Any) -> None:
    """Every string in the program must be a plain name, an allowed operator or sympy arithmetic.

    Names end up in Python that torch generates and runs (FX writes ``getattr(self, "<name>")`` for
    attribute names that are not identifiers), so a quote in one would be code."""
    if not isinstance(program, dict) or not isinstance(program.get("graph_module"), dict):
        raise Rejected("invalid model", "the program JSON has no graph_module")
    if program.get("guards_code"):
        raise Rejected("unsafe content", "the program carries guard code, which would be run as Python")
    for key, text in _strings(program):
        if key in ("target", "as_operator"):
            _check_target(text)
        elif key == "expr_str":
            _check_sympy(text)
        elif key in _FREE_TEXT_KEYS:
            continue
        elif key == "name" and not _IDENTIFIER.fullmatch(text):
            raise Rejected("unsafe content", f"node or value name {text[:80]!r} is not an identifier")
        elif not _DOTTED_NAME.fullmatch(text):
            what = "key" if key is None else key
            raise Rejected("unsafe content", f"{what} {text[:80]!r} in the program is not a plain name")


def _strings(value: Any, key: str | None = None) -> Iterator[tuple[str | None, str]]:
    """(key, text) for every string in the JSON, and (None, key) for every object key.

    Node metadata (stack traces and other free text) is skipped: it is dropped before loading."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "metadata":
                continue
            yield None, str(k)
            yield from _strings(v, k)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, key)
    elif isinstance(value, str):
        yield key, value


def _check_target(target: Any) -> None:
    if not isinstance(target, str) or not _TARGET.fullmatch(target):
        if isinstance(target, str) and target.startswith("torch.ops.higher_order."):
            raise Rejected(
                "unsafe content", f"higher-order operator {target} (control flow, wrappers) is not accepted"
            )
        raise Rejected("unsafe content", f"operator {target!r} is not an aten/prims operator")
    if any(denied in target for denied in _DENIED_OPS):
        raise Rejected("unsafe content", f"operator {target} touches files")


def _check_sympy(expr: Any) -> None:
    """Refuse any symbolic-shape string that is not plain sympy arithmetic (sympify evaluates it)."""
    if not isinstance(expr, str) or len(expr) > 10_000:
        raise Rejected("unsafe content", "a symbolic shape is not a short string")
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(expr).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        raise Rejected("unsafe content", f"symbolic shape {expr[:80]!r} does not parse") from None
    for token in tokens:
        kind, text = token.type, token.string
        if kind in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER, tokenize.NUMBER):
            continue
        if kind == tokenize.NAME and text in _SYMPY_NAMES:
            continue
        if kind == tokenize.OP and text in _SYMPY_OPS:
            continue
        if kind == tokenize.STRING and _SYMPY_STRING.fullmatch(text):
            continue
        raise Rejected(
            "unsafe content", f"symbolic shape {expr[:80]!r} uses {text!r}, which is not sympy arithmetic"
        )


def _graph_input(program: dict[str, Any]) -> GraphInput | None:
    """The program's one tensor input as recorded in its JSON; None when it has another number of inputs."""
    graph_module = program["graph_module"]
    specs = (graph_module.get("signature") or {}).get("input_specs") or []
    user_inputs = [spec["user_input"] for spec in specs if isinstance(spec, dict) and "user_input" in spec]
    if len(user_inputs) != 1:
        raise Rejected(
            "input spec does not fit",
            f"the exported program takes {len(user_inputs)} inputs; only one-input models are accepted",
        )
    try:
        name = user_inputs[0]["arg"]["as_tensor"]["name"]
        meta = graph_module["graph"]["tensor_values"][name]
        sizes = meta["sizes"]
    except (KeyError, TypeError):
        raise Rejected(
            "input spec does not fit", "the exported program's input is not a single tensor"
        ) from None
    shape = tuple(size.get("as_int") if isinstance(size, dict) else None for size in sizes)
    return GraphInput(name=name, shape=shape, dtype=_SPEC_DTYPES.get(meta.get("dtype")))


def load_program(path: Path, root: str) -> nn.Module:
    """The program as a callable module, built from the vetted JSON and raw tensor bytes.

    Runs check_archive again first: the worker trusts no earlier check."""
    import torch
    from torch._export.serde import schema
    from torch._export.serde.serialize import (
        ExportedProgramDeserializer,
        _dict_to_dataclass,
        deserialize_scalar_type,
    )

    vetted = check_archive(path, root)
    program = json.loads(json.dumps(vetted.program))  # a private copy to scrub
    _drop_metadata(program)
    with zipfile.ZipFile(path) as archive:
        state_dict = _tensors(archive, root + "data/weights/", vetted.weights, deserialize_scalar_type, torch)
        constants = _tensors(
            archive, root + "data/constants/", vetted.constants, deserialize_scalar_type, torch
        )
    serialized = _dict_to_dataclass(schema.ExportedProgram, program)
    exported = ExportedProgramDeserializer().deserialize(serialized, state_dict, constants, None)
    return exported.module()


def _drop_metadata(value: Any) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "metadata" and isinstance(item, dict) and "graph" not in value:
                value[key] = {}
            else:
                _drop_metadata(item)
    elif isinstance(value, list):
        for item in value:
            _drop_metadata(item)


def _tensors(archive: zipfile.ZipFile, directory: str, config: dict[str, Any], scalar_type, torch) -> dict:
    """fqn -> tensor, viewing each file's raw bytes with the strides torch.export.save recorded."""
    flat: dict[str, Any] = {}
    tensors: dict[str, Any] = {}
    for fqn, meta in config.items():
        tensor_meta = meta["tensor_meta"]
        dtype = scalar_type(tensor_meta["dtype"])
        path_name = meta["path_name"]
        if path_name not in flat:
            data = bytearray(archive.read(directory + path_name))
            element = torch.empty((), dtype=dtype).element_size()
            if len(data) % element:
                raise Rejected(
                    "truncated", f"{path_name} holds {len(data)} bytes, not a whole number of {dtype}"
                )
            flat[path_name] = torch.frombuffer(data, dtype=dtype) if data else torch.empty(0, dtype=dtype)
        sizes = [_int(s) for s in tensor_meta["sizes"]]
        strides = [_int(s) for s in tensor_meta["strides"]]
        offset = _int(tensor_meta["storage_offset"])
        try:
            tensor = torch.as_strided(flat[path_name], sizes, strides, offset)
        except RuntimeError as exc:  # sizes or strides reach past the stored bytes
            raise Rejected("truncated", f"{fqn}: {exc}") from None
        tensors[fqn] = torch.nn.Parameter(tensor, requires_grad=False) if meta.get("is_param") else tensor
    return tensors


def _int(value: Any) -> int:
    if isinstance(value, dict) and isinstance(value.get("as_int"), int):
        return value["as_int"]
    raise Rejected("invalid model", f"a stored tensor has a symbolic size or stride: {value!r}")
