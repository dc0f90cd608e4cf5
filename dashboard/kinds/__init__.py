"""The registry of job kinds: name -> declaration (``JobKindSpec``). Adding a kind is one module
here and one line below; submission, routing, the worker, the pages and the API follow it."""

from __future__ import annotations

from dashboard.kinds import benchmark, optimize
from dashboard.kinds.base import RESULT_SCHEMA_VERSION, JobContext, JobKindSpec, RunOutcome

KINDS: dict[str, JobKindSpec] = {
    spec.name: spec for spec in (benchmark.KIND, optimize.OPTIMIZE, optimize.AUTO_OPTIMIZE)
}


def get(name: str) -> JobKindSpec:
    """The declaration of ``name``; KeyError for a kind this version does not know."""
    return KINDS[name]


__all__ = ["KINDS", "RESULT_SCHEMA_VERSION", "JobContext", "JobKindSpec", "RunOutcome", "get"]
