"""Auto-optimize: try combinations of the passes that apply, measure every candidate with the same
harness and fidelity check as the original, and choose the FASTEST one inside the constraints.

Neural Compressor stops at the first configuration that passes and Olive can too; users ask for the
fastest instead, and for a plain answer with the best-effort candidate when nothing passes (their
trackers' top requests). A candidate slower than the original never qualifies, whatever its name.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from workers.passes.candidate import Candidate
from workers.passes.context import PassContext
from workers.passes.fidelity import measure_fidelity, relative_drop
from workers.passes.pipeline import StepReport
from workers.passes.planning import Step, plan
from workers.passes.size import size_report

Recipe = Sequence[Mapping[str, Any]]
# measure(module) -> {"p50_ms", "p99_ms", "throughput_per_s", ...}; the harness in production, a
# table in tests (so the choice is tested as a decision, never against a clock).
Measure = Callable[[nn.Module], dict[str, Any]]


@dataclass(frozen=True)
class Constraints:
    max_accuracy_drop: float = 0.01  # relative, Neural Compressor's default criterion
    latency_target_ms: float | None = None
    time_budget_s: float = 600.0


def cpu_recipes(has_data: bool) -> list[list[dict[str, Any]]]:
    ort_int8 = [{"name": "onnxruntime"}, {"name": "ort_quantize_dynamic"}]
    recipes = [
        [{"name": "onnxruntime"}],
        ort_int8,
        [{"name": "quantize_dynamic"}],
        [{"name": "onnxruntime"}, {"name": "ort_quantize_static"}],
        [{"name": "prune_structured", "params": {"amount": 0.5}}, *ort_int8],
        [{"name": "prune_structured", "params": {"amount": 0.5}}, {"name": "quantize_dynamic"}],
        [{"name": "prune_structured", "params": {"amount": 0.75}}, *ort_int8],
    ]
    if has_data:
        recipes += [
            [{"name": "distill", "params": {"width": 0.5}}, *ort_int8],
            [{"name": "distill", "params": {"width": 0.25}}, *ort_int8],
        ]
    return recipes


def gpu_recipes(has_data: bool) -> list[list[dict[str, Any]]]:
    recipes = [
        [{"name": "half_precision", "params": {"dtype": "bf16"}}],
        [{"name": "half_precision", "params": {"dtype": "fp16"}}],
        [{"name": "torch_compile", "params": {"mode": "reduce-overhead"}}],
        [
            {"name": "half_precision", "params": {"dtype": "fp16"}},
            {"name": "torch_compile", "params": {"mode": "reduce-overhead"}},
        ],
        [{"name": "onnxruntime"}],
        [
            {"name": "prune_structured", "params": {"amount": 0.5}},
            {"name": "half_precision", "params": {"dtype": "fp16"}},
        ],
    ]
    if has_data:
        recipes.append(
            [
                {"name": "distill", "params": {"width": 0.5}},
                {"name": "half_precision", "params": {"dtype": "fp16"}},
            ]
        )
    return recipes


@dataclass
class Measured:
    label: str
    passes: list[dict[str, Any]]
    latency: dict[str, Any] | None = None
    fidelity: dict[str, Any] | None = None
    size: dict[str, Any] | None = None
    backend: str = ""
    reports: list[StepReport] = field(default_factory=list)
    error: str | None = None
    reasons: list[str] = field(default_factory=list)  # why it does not qualify; empty = qualifies
    module: nn.Module | None = None
    candidate: Candidate | None = None

    @property
    def p50_ms(self) -> float | None:
        return self.latency.get("p50_ms") if self.latency else None

    @property
    def qualifies(self) -> bool:
        return self.error is None and not self.reasons

    def score(self) -> float | None:
        """Accuracy where there is a data set, else top-1 agreement with the original."""
        if not self.fidelity:
            return None
        return (
            self.fidelity["accuracy"]
            if self.fidelity.get("accuracy") is not None
            else self.fidelity.get("agreement")
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "passes": self.passes,
            "latency_ms": self.latency,
            "fidelity": self.fidelity,
            "size": self.size,
            "backend": self.backend,
            "error": self.error,
            "qualifies": self.qualifies,
            "reasons": self.reasons,
            "steps": [r.to_json() for r in self.reports],
        }


@dataclass
class SearchResult:
    baseline: Measured
    candidates: list[Measured]
    chosen: Measured | None
    best_effort: Measured | None
    pareto: list[str]
    skipped: list[str]
    verdict: str

    def to_json(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline.to_json(),
            "candidates": [c.to_json() for c in self.candidates],
            "chosen": self.chosen.label if self.chosen else None,
            "best_effort": self.best_effort.label if self.best_effort else None,
            "pareto": self.pareto,
            "skipped": self.skipped,
            "verdict": self.verdict,
        }


def label_of(recipe: Recipe) -> str:
    parts = []
    for item in recipe:
        params = item.get("params") or {}
        parts.append(
            item["name"] + (f"({', '.join(f'{k}={v}' for k, v in params.items())})" if params else "")
        )
    return " -> ".join(parts)


class _PrefixCache:
    """Pipelines share prefixes (prune 50% -> export -> int8 and prune 50% -> int8); each prefix runs once."""

    def __init__(self, start: Candidate) -> None:
        self._done: dict[tuple, tuple[Candidate, list[StepReport]]] = {(): (start, [])}

    def run(self, steps: Sequence[Step], ctx: PassContext) -> tuple[Candidate, list[StepReport]]:
        from workers.passes.pipeline import run_pipeline

        key: tuple = ()
        candidate, reports = self._done[()]
        for step in steps:
            next_key = (*key, step.decl.name, tuple(sorted(step.params.items())))
            if next_key not in self._done:
                made, (report,) = run_pipeline(candidate, [step], ctx)
                self._done[next_key] = (made, [*reports, report])
            key = next_key
            candidate, reports = self._done[key]
        return candidate, reports


def _judge(item: Measured, baseline: Measured, constraints: Constraints) -> None:
    """Fill ``item.reasons`` with every constraint it misses."""
    failed = [r for r in item.reports if not r.ok]
    if failed:
        item.reasons.append(f"pass {failed[0].name} failed: {failed[0].error}")
        return
    base_score, score = baseline.score(), item.score()
    if base_score is not None and score is not None:
        drop = relative_drop(base_score, score)
        if drop > constraints.max_accuracy_drop:
            what = "accuracy" if item.fidelity and item.fidelity.get("accuracy") is not None else "agreement"
            item.reasons.append(f"{what} drops {drop:.1%}, more than {constraints.max_accuracy_drop:.1%}")
    if item.p50_ms is None or baseline.p50_ms is None or item.p50_ms >= baseline.p50_ms:
        ratio = item.p50_ms / baseline.p50_ms if item.p50_ms and baseline.p50_ms else float("nan")
        item.reasons.append(f"not faster than the original ({ratio:.2f}x its p50)")
    if constraints.latency_target_ms is not None and (
        item.p50_ms is None or item.p50_ms > constraints.latency_target_ms
    ):
        item.reasons.append(f"p50 above the {constraints.latency_target_ms:g} ms target")


def pareto_front(items: Sequence[Measured]) -> list[str]:
    """Labels of the candidates no other beats on both latency (lower) and accuracy (higher)."""
    points = [(i.p50_ms, i.score(), i.label) for i in items if i.p50_ms is not None and i.score() is not None]
    front = []
    for p50, score, label in points:
        dominated = any(
            (o_p50 <= p50 and o_score >= score) and (o_p50 < p50 or o_score > score)
            for o_p50, o_score, _ in points
        )
        if not dominated:
            front.append(label)
    return front


def auto_optimize(
    model: nn.Module,
    ctx: PassContext,
    registry: Mapping[str, Any],
    measure: Measure,
    constraints: Constraints = Constraints(),
    recipes: Sequence[Recipe] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> SearchResult:
    started = clock()
    has_data = ctx.data is not None
    if recipes is None:
        recipes = gpu_recipes(has_data) if ctx.device.startswith("cuda") else cpu_recipes(has_data)
    ctx.step("measuring the original")
    start = Candidate(model)
    baseline = Measured(
        "original", [], measure(model), measure_fidelity(model, model, ctx), size_report(start), start.backend
    )
    baseline.module, baseline.candidate = model, start
    cache = _PrefixCache(start)
    candidates: list[Measured] = []
    skipped: list[str] = []
    runnable = []
    for recipe in recipes:
        try:
            runnable.append((recipe, plan(registry, recipe, device=ctx.device, has_labeled_data=has_data)))
        except ValueError as exc:
            skipped.append(f"{label_of(recipe)}: {exc}")
    for index, (recipe, steps) in enumerate(runnable, start=1):
        label = label_of(recipe)
        if clock() - started > constraints.time_budget_s:
            skipped.append(f"{label}: the {constraints.time_budget_s:g} s time budget ran out")
            continue
        best = min((c for c in candidates if c.qualifies), key=lambda c: c.p50_ms, default=None)
        best_text = f"{best.label} at {best.p50_ms:.3f} ms" if best else "none yet"
        ctx.step(f"candidate {index}/{len(runnable)}: {label} (best so far: {best_text})")
        item = Measured(label, [dict(r) for r in recipe])
        candidate, item.reports = cache.run(steps, ctx)
        item.backend, item.candidate, item.module = candidate.backend, candidate, candidate.module
        if all(r.ok for r in item.reports):
            try:
                item.latency = measure(candidate.module)
                item.fidelity = measure_fidelity(model, candidate.module, ctx)
                item.size = size_report(candidate)
            except Exception as exc:  # a candidate that cannot be measured is reported, the search goes on
                item.error = f"{type(exc).__name__}: {exc}"[:2000]
        _judge(item, baseline, constraints)
        candidates.append(item)
    qualified = [c for c in candidates if c.qualifies]
    chosen = min(qualified, key=lambda c: c.p50_ms) if qualified else None
    best_effort = None
    if chosen is None:
        measured = [c for c in candidates if c.p50_ms is not None and c.score() is not None]
        faster = [c for c in measured if baseline.p50_ms and c.p50_ms < baseline.p50_ms]
        best_effort = max(faster, key=lambda c: c.score()) if faster else None
    if chosen is not None:
        verdict = (
            f"chose {chosen.label}: {baseline.p50_ms / chosen.p50_ms:.2f}x faster than the original at p50, "
            f"within a {constraints.max_accuracy_drop:.1%} accuracy drop"
        )
    elif best_effort is not None:
        verdict = (
            f"no candidate met every constraint; the closest, {best_effort.label}, misses: {'; '.join(best_effort.reasons)}. "
            "It is shown, not registered."
        )
    else:
        verdict = "no candidate was faster than the original; nothing is registered"
    return SearchResult(
        baseline, candidates, chosen, best_effort, pareto_front([baseline, *candidates]), skipped, verdict
    )


class _Sealed(nn.Module):
    """Hides a candidate from the harness's ``model.to(device, dtype)``: an fp16 or int8 candidate
    must be timed as it was made, not cast back to the job's fp32."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        object.__setattr__(self, "_inner", inner)  # not registered, so .to() and .eval() skip it

    def forward(self, x):
        return self._inner(x)


def harness_measure(input_spec, batch_size: int, device: str, threads: int, budget_s: float = 3.0) -> Measure:
    """The production ``measure``: perfmon's harness at one batch size, as a benchmark job times it."""
    from workers.bench import BenchSpec, run_benchmark

    def measure(module: nn.Module) -> dict[str, Any]:
        spec = BenchSpec(
            batch_sizes=(batch_size,),
            iterations=50,
            device=device,
            threads=threads,
            time_budget_s=budget_s,
            min_duration_s=min(1.0, budget_s / 2),
        )
        run = run_benchmark(_Sealed(module.eval()), input_spec, spec).to_json()["runs"][0]
        if run.get("error"):
            raise RuntimeError(run["error"])
        latency = run["latency_ms"]
        return {
            "p50_ms": latency["p50"],
            "p99_ms": latency["p99"],
            "throughput_per_s": run["throughput_per_s"],
            "batch_size": batch_size,
        }

    return measure
