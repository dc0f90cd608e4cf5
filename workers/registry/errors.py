"""The one error of the registry's engine: an upload we refuse, with a reason a user can act on."""

from __future__ import annotations

from typing import Literal

Reason = Literal[
    "wrong format",
    "truncated",
    "too large",
    "unsafe content",
    "invalid model",
    "input spec does not fit",
    "missing information",
    "invalid request",
]


class Rejected(ValueError):
    """An uploaded file we will not store or run.

    ``reason`` is the category ("wrong format", "truncated", ...); ``str()`` is "<reason>: <detail>",
    the text the API answers with (HTTP 400) and the worker stores on a rejected version."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: Reason = reason
        self.detail = detail


def summarize_error(exc: BaseException, limit: int = 500) -> str:
    """One line for a user: the root error of a TorchScript traceback, else the message's first line."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    # TorchScript wraps the real error after a traceback of the scripted code: "RuntimeError: ...".
    for line in reversed(lines):
        head, sep, rest = line.partition(": ")
        if sep and head.endswith(("Error", "Exception")) and head.replace(".", "").isidentifier():
            return rest[:limit]
    return lines[0][:limit]
