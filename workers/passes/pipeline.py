"""An ordered list of passes applied one after the other; a pass that fails is reported with its
reason and skipped, and the others still run (the article's "a failing rule does not stop the others")."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from workers.bench.progress import Cancelled
from workers.passes.candidate import Candidate
from workers.passes.context import PassContext
from workers.passes.planning import Step


@dataclass
class StepReport:
    name: str
    params: dict[str, Any]
    ok: bool
    seconds: float
    backend: str = ""
    error: str | None = None
    notes: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "params": self.params,
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "backend": self.backend,
            "error": self.error,
            "notes": list(self.notes),
            "details": self.details,
        }


def run_pipeline(
    candidate: Candidate, steps: Sequence[Step], ctx: PassContext
) -> tuple[Candidate, list[StepReport]]:
    """Apply ``steps`` in order; returns the last good candidate and one report per step."""
    reports = []
    for index, step in enumerate(steps, start=1):
        ctx.step(f"pass {index}/{len(steps)}: {step.decl.title}")
        started = time.perf_counter()
        if candidate.form not in step.decl.accepts:
            reason = f"skipped: it needs a {' or '.join(step.decl.accepts)} model and an earlier pass failed to make one"
            reports.append(StepReport(step.decl.name, step.params, False, 0.0, error=reason))
            continue
        try:
            outcome = step.decl.run(candidate, step.params, ctx)
        except Cancelled:
            raise
        except Exception as exc:  # one failing pass is reported, the rest still run
            reports.append(
                StepReport(
                    step.decl.name,
                    step.params,
                    False,
                    time.perf_counter() - started,
                    error=f"{type(exc).__name__}: {exc}"[:2000],
                )
            )
            continue
        candidate = outcome.candidate
        reports.append(
            StepReport(
                step.decl.name,
                step.params,
                True,
                time.perf_counter() - started,
                backend=candidate.backend,
                notes=outcome.notes,
                details=outcome.details,
            )
        )
    return candidate, reports
