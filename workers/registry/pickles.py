"""Reading which globals a pickle would import, without unpickling it.

``pickletools.genops`` only decodes opcodes; nothing is imported or called. A pickle can name a
global in two ways: GLOBAL/INST carry "module name" inline, and STACK_GLOBAL takes the two strings
on top of the stack, which may come from string opcodes or from the memo. We follow exactly those
two sources; a STACK_GLOBAL whose operands we cannot follow is reported as unverifiable, never guessed.
"""

from __future__ import annotations

import pickletools
from collections.abc import Callable, Iterator

_STRING_OPS = frozenset(
    {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING", "SHORT_BINSTRING"}
)
_MEMO_PUT = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_MEMO_GET = frozenset({"GET", "BINGET", "LONG_BINGET"})
# The extension registry maps small integers to arbitrary globals: nothing we could check.
_EXTENSIONS = frozenset({"EXT1", "EXT2", "EXT4"})
# Opcodes that leave the stack as it is.
_NEUTRAL = frozenset({"PROTO", "FRAME"})

UNVERIFIABLE = "<unverifiable global>"


def pickle_globals(data: bytes) -> Iterator[str]:
    """Yield "module.name" for every global the pickle references, UNVERIFIABLE where it cannot tell.

    Raises ValueError when data is not a well-formed pickle (truncated, garbage)."""
    memo: dict[int, str | None] = {}
    recent: list[str | None] = []  # values pushed by the latest run of string pushes / memo gets
    try:
        for opcode, arg, _pos in pickletools.genops(data):
            name = opcode.name
            if name in ("GLOBAL", "INST"):
                module, _, attr = str(arg).partition(" ")
                yield f"{module}.{attr}"
                recent = []
            elif name == "STACK_GLOBAL":
                if len(recent) >= 2 and recent[-1] is not None and recent[-2] is not None:
                    yield f"{recent[-2]}.{recent[-1]}"
                else:
                    yield UNVERIFIABLE
                recent = []
            elif name in _EXTENSIONS:
                yield UNVERIFIABLE
                recent = []
            elif name in _STRING_OPS:
                recent.append(arg if isinstance(arg, str) else None)
            elif name == "MEMOIZE":
                memo[len(memo)] = recent[-1] if recent else None
            elif name in _MEMO_PUT:
                memo[int(arg)] = recent[-1] if recent else None
            elif name in _MEMO_GET:
                recent.append(memo.get(int(arg)))
            elif name in _NEUTRAL:
                pass
            else:
                recent = []
    except Exception as exc:  # pickletools raises ValueError, but also IndexError/struct errors
        raise ValueError(f"not a well-formed pickle: {exc}") from None


def disallowed_globals(data: bytes, allowed: Callable[[str], bool]) -> list[str]:
    """The globals of a pickle that ``allowed`` refuses (sorted, unique); [] when all pass."""
    return sorted({g for g in pickle_globals(data) if g == UNVERIFIABLE or not allowed(g)})
