"""An optimization result made ready to show: one row for the original and one per pass (failed
passes included, with their error), ratios and accuracy drops worked out, and the figures the
charts draw. Reads the documents dashboard/kinds/optimize.py writes; tolerant of missing keys."""

from __future__ import annotations

from typing import Any


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _score(row: dict) -> tuple[str, float | None]:
    """Accuracy where the model has a data set, else top-1 agreement with the original."""
    if _num(row.get("accuracy")) is not None:
        return "accuracy", _num(row["accuracy"])
    return "agreement", _num(row.get("agreement"))


def relative_drop(original: float | None, now: float | None) -> float | None:
    """(original - now) / original, as the search judges it; negative means better."""
    if original is None or now is None or not original:
        return None
    return (original - now) / original


def _pass_row(raw: dict, batch_sizes: list[str], base_score: float | None) -> dict:
    latency, throughput, speedup = (
        _dict(raw.get("latency_ms")),
        _dict(raw.get("throughput_per_s")),
        _dict(raw.get("speedup")),
    )
    score_name, score = _score(raw)
    return {
        "label": raw.get("label", ""),
        "backend": raw.get("backend", ""),
        "cells": [
            {
                "batch_size": bs,
                "p50": _num(_dict(latency.get(bs)).get("p50")),
                "p99": _num(_dict(latency.get(bs)).get("p99")),
                "throughput": _num(throughput.get(bs)),
                "speedup": _num(speedup.get(bs)),
            }
            for bs in batch_sizes
        ],
        "size_bytes": _num(raw.get("size_bytes")),
        "params": raw.get("params"),
        "nonzero_params": raw.get("nonzero_params"),
        "score_name": score_name,
        "score": score,
        "drop": relative_drop(base_score, score),
        "slower": bool(raw.get("slower")),
        "notes": [n for n in _list(raw.get("notes")) if isinstance(n, str)],
        "failed": False,
    }


def optimize_view(result: Any) -> dict[str, Any]:
    """The before/after table of an ``optimize`` result, in pipeline order."""
    result = _dict(result)
    batch_sizes = [str(bs) for bs in _list(result.get("batch_sizes"))]
    before = _dict(result.get("before"))
    _, base_score = _score(before)
    rows = [{**_pass_row(before, batch_sizes, base_score), "original": True}] if before else []
    after = iter(a for a in _list(result.get("after")) if isinstance(a, dict))
    for step in _list(result.get("steps")):
        step = _dict(step)
        if step.get("ok"):
            made = next(after, None)
            if made is not None:
                row = _pass_row(made, batch_sizes, base_score)
                row["seconds"] = _num(step.get("seconds"))
                rows.append(row)
        else:
            rows.append(
                {
                    "label": step.get("name", ""),
                    "failed": True,
                    "error": step.get("error") or "failed",
                    "notes": [n for n in _list(step.get("notes")) if isinstance(n, str)],
                }
            )
    chart = {
        "batch_sizes": batch_sizes,
        "rows": [
            {
                "label": r["label"],
                "p50": {c["batch_size"]: c["p50"] for c in r["cells"]},
                "slower": r["slower"],
            }
            for r in rows
            if not r["failed"]
        ],
    }
    return {
        "batch_sizes": batch_sizes,
        "rows": rows,
        "chart": chart,
        "score_name": _score(before)[0],
        # A failed pass's error spans every column after its name: backend, 4 per batch size, 5 more.
        "failed_span": 1 + 4 * len(batch_sizes) + 5,
    }


def _candidate(raw: dict, base: dict | None, chosen: str | None, pareto: list) -> dict:
    latency, fidelity, size = _dict(raw.get("latency_ms")), _dict(raw.get("fidelity")), _dict(raw.get("size"))
    score_name, score = _score(fidelity)
    base_latency = _dict(base.get("latency_ms")) if base is not None else {}
    _, base_score = _score(_dict(base.get("fidelity"))) if base is not None else ("", None)
    p50, base_p50 = _num(latency.get("p50_ms")), _num(base_latency.get("p50_ms"))
    failed = [s for s in _list(raw.get("steps")) if isinstance(s, dict) and not s.get("ok")]
    return {
        "label": raw.get("label", ""),
        "passes": raw.get("passes"),
        "p50": p50,
        "p99": _num(latency.get("p99_ms")),
        "throughput": _num(latency.get("throughput_per_s")),
        "speedup": base_p50 / p50 if p50 and base_p50 else None,
        "score_name": score_name,
        "score": score,
        "drop": relative_drop(base_score, score),
        "size_bytes": _num(size.get("size_bytes")),
        "params": size.get("params"),
        "nonzero_params": size.get("nonzero_params"),
        "backend": raw.get("backend", ""),
        "qualifies": bool(raw.get("qualifies")),
        "reasons": [r for r in _list(raw.get("reasons")) if isinstance(r, str)],
        "error": raw.get("error") or (failed[0].get("error") if failed else None),
        "chosen": raw.get("label") == chosen,
        "pareto": raw.get("label") in pareto,
    }


def auto_view(result: Any) -> dict[str, Any]:
    """The candidates of an ``auto_optimize`` result with the original first, and the Pareto chart's points."""
    result = _dict(result)
    chosen, pareto = result.get("chosen"), _list(result.get("pareto"))
    baseline = _dict(result.get("baseline"))
    original = {**_candidate(baseline, baseline, None, []), "original": True} if baseline else None
    candidates = [
        _candidate(c, baseline, chosen, pareto)
        for c in _list(result.get("candidates"))
        if isinstance(c, dict)
    ]
    points = [
        {
            "label": c["label"],
            "p50": c["p50"],
            "score": c["score"],
            "pareto": c["pareto"],
            "chosen": c["chosen"],
            "qualifies": c["qualifies"],
        }
        for c in candidates
        if c["p50"] is not None and c["score"] is not None
    ]
    chart = {
        "score_name": original["score_name"] if original else "agreement",
        "original": {"label": "original", "p50": original["p50"], "score": original["score"]}
        if original
        else None,
        "points": points,
    }
    return {
        "original": original,
        "candidates": candidates,
        "chosen": chosen,
        "best_effort": result.get("best_effort"),
        "verdict": result.get("verdict") or "",
        "skipped": [s for s in _list(result.get("skipped")) if isinstance(s, str)],
        "constraints": _dict(result.get("constraints")),
        "chart": chart,
        "score_name": chart["score_name"],
    }


def _speed_text(speedup: float | None) -> str | None:
    if speedup is None or speedup <= 0:
        return None
    return f"{speedup:.1f}x faster" if speedup >= 1 else f"{1 / speedup:.1f}x slower"


def _score_text(score_name: str, score: float | None, drop: float | None) -> str | None:
    """ "-0.3% acc" (relative change of accuracy, as the constraint reads it), else the agreement."""
    if score_name == "accuracy" and drop is not None:
        return f"{-drop * 100:+.1f}% acc"
    if score is not None:
        return f"{score * 100:.1f}% agreement"
    return None


def optimize_headline(result: Any) -> dict[str, Any] | None:
    """What the jobs list says of an optimization: "2.1x faster, -0.3% acc, v3 registered", with the
    figures it is made of, and the final model's p50 and throughput for the list's columns (at the
    smallest batch size measured). None when nothing was measured."""
    result = _dict(result)
    registered = _dict(result.get("registered"))
    if result.get("kind") == "auto_optimize":
        view = auto_view(result)
        picked = next((c for c in view["candidates"] if c["chosen"]), None)
        best_effort = None
        if picked is None:
            best_effort = next((c for c in view["candidates"] if c["label"] == view["best_effort"]), None)
        shown = picked or best_effort
        if shown is None and view["original"] is None:
            return None
        batch = _dict(result.get("constraints")).get("batch_size")
        speedup = shown["speedup"] if shown else None
        parts = [] if picked else ["nothing qualified" + (": best effort" if best_effort else "")]
        parts += [
            _speed_text(speedup),
            _score_text(shown["score_name"], shown["score"], shown["drop"]) if shown else None,
        ]
        figures = {
            "p50_ms": shown["p50"] if shown else None,
            "p50_batch_size": batch,
            "throughput_per_s": shown["throughput"] if shown else None,
            "throughput_batch_size": batch,
            "speedup": speedup,
            "accuracy_drop": shown["drop"] if shown else None,
            "chosen": picked["label"] if picked else None,
        }
    else:
        view = optimize_view(result)
        measured = [r for r in view["rows"] if not r["failed"] and not r.get("original")]
        if not measured:
            return None
        final = measured[-1]
        cell = final["cells"][0] if final["cells"] else {}
        parts = [
            _speed_text(cell.get("speedup")),
            _score_text(final["score_name"], final["score"], final["drop"]),
        ]
        figures = {
            "p50_ms": cell.get("p50"),
            "p50_batch_size": _int(cell.get("batch_size")),
            "throughput_per_s": cell.get("throughput"),
            "throughput_batch_size": _int(cell.get("batch_size")),
            "speedup": cell.get("speedup"),
            "accuracy_drop": final["drop"],
            "chosen": final["label"],
        }
    if registered.get("version") is not None:
        parts.append(f"v{registered['version']} registered")
    return {
        **figures,
        "registered_version": registered.get("version"),
        "text": ", ".join(p for p in parts if p),
    }


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
