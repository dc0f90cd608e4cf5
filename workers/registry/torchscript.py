"""TorchScript archives (.pt from torch.jit.save): what ``torch.jit.load`` would run, checked first.

``torch.jit.load`` does not use Python's pickle: its C++ unpickler builds only TorchScript types
(classes compiled from the archive's ``code/``) and tensors, so a ``__reduce__`` gadget fails to
load. But a TorchScript program is a program: checked against torch 2.13, it can
  * run code while loading: a class's ``__setstate__`` is called by ``torch.jit.load``
    (we saw one write a file through ``torch.save`` before the load finished), and
  * touch the file system when run: ``aten::save`` (``torch.save``) writes files and
    ``aten::from_file`` maps them; other namespaces reach collectives and debug loaders.

So before loading we scan the archive: every pickle's globals must be TorchScript's own
(``__torch__.*``, tensor rebuilding, ``collections.OrderedDict``), and the source in ``code/`` is
parsed (``ast``, never executed) and refused if it defines ``__setstate__``, names ``save`` /
``from_file`` / ``load_tensor``, or calls operators outside aten/prim/quantized. After loading, the
compiled graphs of every method are checked against the same rules.
"""

from __future__ import annotations

import ast
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workers.registry.errors import Rejected, summarize_error
from workers.registry.pickles import disallowed_globals
from workers.registry.zips import SafeZip

if TYPE_CHECKING:
    from torch import nn

ALLOWED_NAMESPACES = frozenset({"aten", "prim", "prims", "quantized", "_quantized"})
DENIED_NAMES = frozenset({"save", "from_file", "load_tensor"})
# What the checks read of one entry, at most: a model's structure pickle (its tensors live beside
# it) and one class's source, which is parsed into a syntax tree (tens of times its size in memory).
MAX_PICKLE_BYTES = 32 << 20
MAX_SOURCE_BYTES = 2 << 20
# All sources together: parsing costs ~0.15 s per MiB, and a web request must not take minutes.
MAX_TOTAL_SOURCE_BYTES = 16 << 20
_TS_PICKLE_GLOBALS = frozenset(
    {
        "collections.OrderedDict",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_qtensor",
        # Quantization schemes of int8 tensors (enum values, not callables): perfmon's own
        # dynamic-int8 artifacts hold them.
        "torch.per_tensor_affine",
        "torch.per_channel_affine",
        "torch.per_channel_affine_float_qparams",
        "torch.jit._pickle.build_intlist",
        "torch.jit._pickle.build_tensorlist",
        "torch.jit._pickle.build_doublelist",
        "torch.jit._pickle.build_boollist",
        "torch.jit._pickle.restore_type_tag",
    }
)


def _pickle_global_ok(name: str) -> bool:
    return (
        name.startswith("__torch__.")
        or name in _TS_PICKLE_GLOBALS
        or re.fullmatch(r"torch\.[A-Za-z0-9]+Storage", name) is not None
    )


def check_archive(path: Path, root: str) -> None:
    """Vet a TorchScript archive without loading it; raises Rejected with the reason.

    Every deflated entry is a source file or its debug pickle, and all of those are read here with
    caps, so an entry that inflates past what it declares is refused before torch.jit.load sees it."""
    source_bytes = 0
    with SafeZip(path, "the TorchScript archive") as archive:
        for info in archive.infos:
            relative = info.filename[len(root) :]
            if info.is_dir():
                continue
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise Rejected("invalid model", f"entry {relative!r} uses an unknown compression")
            is_code = relative.startswith("code/") and relative.endswith((".py", ".py.debug_pkl"))
            if info.compress_type == zipfile.ZIP_DEFLATED and not is_code:
                # torch.jit.save deflates only source and its debug info; anything else could be a bomb.
                raise Rejected(
                    "invalid model",
                    f"entry {relative!r} is compressed; torch.jit.save stores it uncompressed",
                )
            if relative.endswith((".pkl", ".debug_pkl")):
                data = archive.read(info, MAX_PICKLE_BYTES)
                try:
                    bad = disallowed_globals(data, _pickle_global_ok)
                except ValueError as exc:
                    raise Rejected("truncated", f"{relative} is not a whole pickle: {exc}") from None
                if bad:
                    raise Rejected(
                        "unsafe content",
                        f"{relative} imports {', '.join(bad)}; TorchScript archives only hold TorchScript types",
                    )
            elif is_code:
                source_bytes += info.file_size
                if source_bytes > MAX_TOTAL_SOURCE_BYTES:
                    raise Rejected(
                        "too large",
                        f"the archive's source files add up to more than {MAX_TOTAL_SOURCE_BYTES} bytes",
                    )
                source = archive.read(info, MAX_SOURCE_BYTES)
                _check_source(relative, source.decode("utf-8", errors="replace"))


def _check_source(relative: str, source: str) -> None:
    try:
        tree = ast.parse(source, filename=relative)
    except SyntaxError as exc:
        raise Rejected(
            "invalid model", f"{relative} is not TorchScript source: {exc.msg} (line {exc.lineno})"
        ) from None
    except ValueError as exc:  # Python 3.11: "source code string cannot contain null bytes"
        raise Rejected("invalid model", f"{relative} is not TorchScript source: {exc}") from None
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "__setstate__":
            raise Rejected(
                "unsafe content",
                f"{relative} defines __setstate__, which torch.jit.load would run while loading",
            )
        if isinstance(node, ast.Name) and node.id in DENIED_NAMES:
            raise Rejected("unsafe content", f"{relative} uses {node.id}, which touches files")
        if isinstance(node, ast.Attribute):
            dotted = _dotted(node)
            if node.attr in DENIED_NAMES:
                raise Rejected(
                    "unsafe content", f"{relative} uses {dotted or node.attr}, which touches files"
                )
            parts = dotted.split(".") if dotted else []
            if "ops" in parts[:-1]:
                namespace = parts[parts.index("ops") + 1]
                if namespace not in ALLOWED_NAMESPACES:
                    raise Rejected(
                        "unsafe content", f"{relative} calls {dotted}, outside aten/prim/quantized"
                    )


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def load_module(path: Path, root: str) -> nn.Module:
    """torch.jit.load on the CPU, after check_archive, with every compiled graph checked after."""
    import torch

    check_archive(path, root)
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        raise Rejected("invalid model", f"torch.jit.load failed: {summarize_error(exc)}") from None
    for kind in _op_kinds(module):
        namespace, _, op = kind.partition("::")
        if namespace not in ALLOWED_NAMESPACES or op in DENIED_NAMES:
            raise Rejected("unsafe content", f"the compiled program calls {kind}")
    return module.eval()


def _op_kinds(module: Any) -> Iterator[str]:
    import torch

    for submodule in module.modules():
        compiled = getattr(submodule, "_c", None)
        if compiled is None:
            continue
        for name in compiled._method_names():
            # Inlined, so that functions and methods called from this one are checked too.
            graph = compiled._get_method(name).graph.copy()
            torch._C._jit_pass_inline(graph)
            yield from _graph_kinds(graph)


def _graph_kinds(graph_or_block: Any) -> Iterator[str]:
    for node in graph_or_block.nodes():
        yield node.kind()
        for block in node.blocks():
            yield from _graph_kinds(block)
