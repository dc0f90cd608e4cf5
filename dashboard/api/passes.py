"""/api/passes: every optimization pass, where it applies and its parameters with ranges, read from
the same declarations the worker validates with (workers/passes/__init__.py)."""

from __future__ import annotations

from typing import Any

from ninja import Router, Schema

router = Router(tags=["optimization"])


class PassParamOut(Schema):
    name: str
    kind: str
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    choices: list[str] | None = None


class PassOut(Schema):
    name: str
    title: str
    summary: str
    accepts: list[str]
    devices: list[str]
    needs_labeled_data: bool
    caveat: str
    params: list[PassParamOut]


@router.get("", response=list[PassOut])
def list_passes(request):
    from workers.passes import catalogue

    return catalogue()
