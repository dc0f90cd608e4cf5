"""Checking a requested pipeline before anything runs (no torch here: the web process does this)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workers.passes.declare import InvalidPassParams, PassDecl


@dataclass(frozen=True)
class Step:
    decl: PassDecl
    params: dict[str, Any]


def plan(
    registry: Mapping[str, PassDecl],
    requested: Sequence[Mapping[str, Any]],
    *,
    device: str,
    has_labeled_data: bool,
    start_form: str = "torch",
    capability: tuple[int, int] | None = None,
) -> list[Step]:
    """Check a requested pipeline ([{"name", "params"?}, ...]) before anything runs: every pass known,
    every parameter in range, each pass applicable to the form the previous one leaves (ONNX Runtime's
    int8 needs the graph the onnxruntime pass exports), to the device and, where ``capability`` (the
    GPU's CUDA compute capability) is known, to the GPU's generation. Raises InvalidPassParams."""
    if not requested:
        raise InvalidPassParams("passes: give at least one pass")
    steps, form = [], start_form
    for position, item in enumerate(requested, start=1):
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise InvalidPassParams(f'passes[{position}]: expected {{"name": <pass>, "params": {{...}}}}')
        decl = registry.get(item["name"])
        if decl is None:
            raise InvalidPassParams(f"unknown pass {item['name']!r}; known passes: {', '.join(registry)}")
        unknown_keys = set(item) - {"name", "params"}
        if unknown_keys:
            raise InvalidPassParams(f"pass {decl.name!r}: unknown field {sorted(unknown_keys)[0]!r}")
        params = decl.parse_params(item.get("params"))
        decl.check_applies(form, device, params, capability)  # type: ignore[arg-type]
        if decl.needs_labeled_data and not has_labeled_data:
            raise InvalidPassParams(
                f"pass {decl.name!r} needs a labeled data set, and this model has none: upload a .npz "
                'with x and y (POST /api/datasets) and name it in the params ("dataset": <id>)'
            )
        steps.append(Step(decl, params))
        form = decl.extra.get("produces", form)
    return steps
