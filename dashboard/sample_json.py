"""JSON text of node samples for the sampler's Redis writes, reusing the text of parts already encoded.

Each tick the sampler encodes a sample twice (the browsers' push, and the latest sample that
/metrics reads) and ``json.dumps`` was the largest part of its publishing CPU. Two parts need not be
encoded again: the top-processes table, which changes only with a process scan (every few seconds)
yet was half of a GPU-less node's text, and the GPU list, which both texts carry as one object.
The result parses to the same object as ``json.dumps`` of the sample; only the key order differs."""

from __future__ import annotations

import json
from typing import Any

_encode = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode


def _with(obj_text: str, parts: list[str]) -> str:
    """An object's text with ``"key":value`` parts added at its end."""
    if not parts:
        return obj_text
    body = obj_text[1:-1]
    return "{" + ",".join([body, *parts] if body else parts) + "}"


class SampleJson:
    """``dumps(sample)`` for ``NodeSample.to_json()`` dicts and their browser form; one per thread."""

    def __init__(self) -> None:
        self._top: tuple[Any, str] | None = None  # (table, its text), compared by value
        self._gpus: tuple[Any, str] | None = None  # (list, its text), compared by identity

    def dumps(self, sample: dict[str, Any]) -> str:
        host, gpus = sample.get("host"), sample.get("gpus")
        top = host.get("top_processes") if isinstance(host, dict) else None
        if top is None and not isinstance(gpus, list):
            return _encode(sample)
        rest = {
            k: v
            for k, v in sample.items()
            if not (k == "host" and top is not None or k == "gpus" and isinstance(gpus, list))
        }
        parts = []
        if top is not None:
            parts.append('"host":' + self._host_text(host, top))
        if isinstance(gpus, list):
            if self._gpus is None or self._gpus[0] is not gpus:
                self._gpus = (gpus, _encode(gpus))
            parts.append('"gpus":' + self._gpus[1])
        return _with(_encode(rest), parts)

    def _host_text(self, host: dict[str, Any], top: Any) -> str:
        if self._top is None or self._top[0] != top:
            self._top = (top, _encode(top))
        rest = {k: v for k, v in host.items() if k != "top_processes"}
        return _with(_encode(rest), ['"top_processes":' + self._top[1]])
