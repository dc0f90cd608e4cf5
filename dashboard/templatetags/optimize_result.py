"""Filters for the optimization result partial (templates/dashboard/_optimize_result.html)."""

from __future__ import annotations

from django import template

from dashboard.results.optimize import auto_view, optimize_view

register = template.Library()

register.filter("optimize_view", optimize_view)
register.filter("auto_view", auto_view)


@register.filter
def percent_drop(value: object) -> str:
    """0.012 -> "-1.2%" (a drop), -0.003 -> "+0.3%" (better); None -> "–"."""
    if not isinstance(value, int | float):
        return "–"
    if abs(value) < 0.0005:  # under 0.05%: "-0.0%" would read as a loss
        return "0.0%"
    return f"{-value * 100:+.1f}%"


@register.filter
def as_percent(value: object) -> str:
    """0.01 -> "1%", 0.005 -> "0.5%"; None -> "–"."""
    if not isinstance(value, int | float):
        return "–"
    return f"{value * 100:g}%"
