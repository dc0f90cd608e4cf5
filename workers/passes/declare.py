"""How a pass says what it is: where it applies and which parameters it takes, with their ranges.

One declaration per pass feeds everything that needs to know: the engine validates with it, and
the API (``GET /api/passes``), the form and the docs read the same ``to_json()``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from workers.passes.candidate import Candidate
    from workers.passes.context import PassContext, PassOutcome

ParamKind = Literal["int", "float", "choice", "bool"]
Device = Literal["cpu", "cuda"]
# What a candidate is when a pass receives it: a torch module run eagerly, or an ONNX graph.
Form = Literal["torch", "onnx"]


class InvalidPassParams(ValueError):
    """A pipeline we refuse; the message names the pass and parameter, fit to show a user as is."""


@dataclass(frozen=True)
class ParamDecl:
    name: str
    kind: ParamKind
    default: Any
    help: str
    low: float | None = None  # inclusive bounds for int and float
    high: float | None = None
    choices: tuple[str, ...] = ()
    # Choices that only run on some devices, e.g. {"cuda": ("cuda",)} for an execution provider.
    choice_devices: Mapping[str, tuple[Device, ...]] = field(default_factory=dict)

    def parse(self, pass_name: str, value: Any) -> Any:
        where = f"pass {pass_name!r}, parameter {self.name!r}"
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise InvalidPassParams(f"{where}: expected true or false, not {value!r}")
            return value
        if self.kind == "choice":
            if value not in self.choices:
                raise InvalidPassParams(f"{where}: {value!r} is not one of {', '.join(self.choices)}")
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidPassParams(f"{where}: expected a number, not {value!r}")
        if self.kind == "int" and not (isinstance(value, int) or float(value).is_integer()):
            raise InvalidPassParams(f"{where}: expected a whole number, not {value!r}")
        if not math.isfinite(value):
            raise InvalidPassParams(f"{where}: expected a finite number, not {value!r}")
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            raise InvalidPassParams(f"{where}: {value} is outside {self.low:g} to {self.high:g}")
        return int(value) if self.kind == "int" else float(value)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "default": self.default,
            "help": self.help,
        }
        if self.kind in ("int", "float"):
            out.update(low=self.low, high=self.high)
        if self.choices:
            out["choices"] = list(self.choices)
        if self.choice_devices:
            out["choice_devices"] = {c: list(d) for c, d in self.choice_devices.items()}
        return out


@dataclass(frozen=True)
class PassDecl:
    """One optimization pass. ``run`` takes (candidate, parsed params, context) and returns the outcome."""

    name: str
    title: str
    summary: str
    # "module:function", imported when the pass runs, so the web process lists passes without
    # torch; a callable is taken as is (tests build passes of their own).
    run_ref: str | Callable[..., Any]
    accepts: tuple[Form, ...] = ("torch",)
    devices: tuple[Device, ...] = ("cpu", "cuda")
    params: tuple[ParamDecl, ...] = ()
    needs_labeled_data: bool = False
    # Architectures the pass refuses, by the model class's name (e.g. attention models for structured pruning).
    caveat: str = ""
    # The lowest CUDA compute capability whose kernels the pass needs (float8: 8.9, 2:4 sparsity: 8.0).
    min_capability: tuple[int, int] | None = None
    # A Python package the pass imports that perfmon does not require (torchao): named in its refusal.
    needs_package: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def run(self) -> Callable[[Candidate, Mapping[str, Any], PassContext], PassOutcome]:
        import importlib

        if callable(self.run_ref):
            return self.run_ref
        module, _, function = self.run_ref.partition(":")
        return getattr(importlib.import_module(module), function)

    def parse_params(self, given: Mapping[str, Any] | None) -> dict[str, Any]:
        """Defaults filled in, every value checked; an unknown name is refused, never ignored."""
        given = dict(given or {})
        known = {p.name: p for p in self.params}
        unknown = sorted(set(given) - set(known))
        if unknown:
            offered = ", ".join(known) or "none"
            raise InvalidPassParams(
                f"pass {self.name!r} has no parameter {unknown[0]!r} (it takes: {offered})"
            )
        return {
            name: decl.parse(self.name, given[name]) if name in given else decl.default
            for name, decl in known.items()
        }

    def check_applies(
        self,
        form: Form,
        device: str,
        params: Mapping[str, Any] | None = None,
        capability: tuple[int, int] | None = None,
    ) -> None:
        """Refuse the pass where it cannot run: the model's form at this point, the device kind, a
        parameter choice that needs another device, or a GPU older than ``min_capability``
        (``capability`` is the GPU's, when known; None skips that check)."""
        if form not in self.accepts:
            raise InvalidPassParams(
                f"pass {self.name!r} applies to {' or '.join(self.accepts)} models, and the model is {form} at this point"
            )
        kind = "cuda" if device.startswith("cuda") else "cpu"
        if kind not in self.devices:
            raise InvalidPassParams(
                f"pass {self.name!r} needs a CUDA GPU, and the device is {device}"
                if self.devices == ("cuda",)
                else f"pass {self.name!r} runs on {' or '.join(self.devices)} only, not {device}"
            )
        for decl in self.params:
            value = (params or {}).get(decl.name)
            allowed = decl.choice_devices.get(value) if isinstance(value, str) else None
            if allowed and kind not in allowed:
                raise InvalidPassParams(
                    f"pass {self.name!r}, parameter {decl.name!r}: {value!r} needs a CUDA GPU, and the device is {device}"
                    if allowed == ("cuda",)
                    else f"pass {self.name!r}, parameter {decl.name!r}: {value!r} runs on {' or '.join(allowed)} only, not {device}"
                )
        if kind == "cuda" and self.min_capability and capability and tuple(capability) < self.min_capability:
            need = ".".join(map(str, self.min_capability))
            raise InvalidPassParams(
                f"pass {self.name!r} needs a GPU of compute capability {need} or newer, and {device} is "
                f"{'.'.join(map(str, capability))}"
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "summary": self.summary,
            "accepts": list(self.accepts),
            "devices": list(self.devices),
            "needs_labeled_data": self.needs_labeled_data,
            "caveat": self.caveat,
            "min_compute_capability": ".".join(map(str, self.min_capability))
            if self.min_capability
            else None,
            "needs_package": self.needs_package or None,
            "params": [p.to_json() for p in self.params],
        }
