"""Human wording for the identifiers a result stores (stop reasons)."""

from __future__ import annotations

from django import template

register = template.Library()

STOP_REASONS = {
    "converged": "median known ±2%",
    "time_budget": "time budget ended",
    "max_iterations": "iteration cap reached",
}


@register.filter
def stop_reason_label(reason: object) -> str:
    """ "max_iterations" -> "iteration cap reached"; an unknown reason shows as it is, none as "–"."""
    if not reason:
        return "–"
    return STOP_REASONS.get(str(reason), str(reason).replace("_", " "))
