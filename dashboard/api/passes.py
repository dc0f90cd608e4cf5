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
    # Choices that run on some devices only, e.g. {"cuda": ["cuda"]} for ONNX Runtime's provider.
    choice_devices: dict[str, list[str]] | None = None


class PassOut(Schema):
    name: str
    title: str
    summary: str
    accepts: list[str]
    devices: list[str]
    needs_labeled_data: bool
    caveat: str
    # "8.9": the oldest GPU generation whose kernels the pass needs; None: any.
    min_compute_capability: str | None = None
    # A package the worker needs besides perfmon's own (torchao), or None.
    needs_package: str | None = None
    params: list[PassParamOut]


@router.get("", response=list[PassOut])
def list_passes(request):
    from workers.passes import catalogue

    return catalogue()
