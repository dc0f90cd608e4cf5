"""Auto-optimize: try combinations of the passes that apply, measure every candidate with the same
harness and fidelity check as the original, and choose the FASTEST one inside the constraints.

Neural Compressor stops at the first configuration that passes and Olive can too; users ask for the
fastest instead, and for a plain answer with the best-effort candidate when nothing passes (their
trackers' top requests). A candidate slower than the original never qualifies, whatever its name.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from workers.bench.progress import Cancelled
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
    """Single techniques first (so the choice is never slower than the best of them when measured in
    the same run), then combinations. On the MLPs the 784- or 1024-wide first layer is most of the
    work, so shrinking it (distillation, structured pruning) and then running int8 is what beats
    ONNX Runtime's int8 alone; with no data set, pruning fine-tunes on the original's outputs."""
    ort_int8 = [{"name": "onnxruntime"}, {"name": "ort_quantize_dynamic"}]
    # Generated calibration inputs carry no more ranges in 16 batches than in 4, and ORT keeps every
    # intermediate tensor of every calibration batch (1.7 GB and 10+ CPU minutes on TinyTransformer).
    calibration = {} if has_data else {"params": {"calibration_batches": 4}}
    ort_static = [{"name": "onnxruntime"}, {"name": "ort_quantize_static", **calibration}]
    # Without labels fine-tuning matches the original on generated inputs: fewer, costlier epochs.
    prune_half = {
        "name": "prune_structured",
        "params": {"amount": 0.5, "finetune_epochs": 5 if has_data else 2},
    }
    recipes = [
        [{"name": "onnxruntime"}],
        ort_int8,
        ort_static,
        [{"name": "quantize_dynamic"}],
        [prune_half],
        [prune_half, {"name": "onnxruntime"}],
        [prune_half, *ort_int8],
        [prune_half, *ort_static],
        [prune_half, {"name": "quantize_dynamic"}],
    ]
    if has_data:
        # A quarter of the neurons left needs longer fine-tuning to stay within 1% of the accuracy.
        prune_quarter = {"name": "prune_structured", "params": {"amount": 0.75, "finetune_epochs": 15}}
        recipes += [
            [prune_quarter, {"name": "onnxruntime"}],
            [prune_quarter, *ort_int8],
            [{"name": "distill", "params": {"width": 0.5}}],
            [{"name": "distill", "params": {"width": 0.5}}, *ort_int8],
            [{"name": "distill", "params": {"width": 0.25}}, *ort_int8],
            [{"name": "distill", "params": {"width": 0.25}}, {"name": "onnxruntime"}],
        ]
    return recipes


def not_applicable(model: nn.Module, ctx: PassContext, pass_name: str) -> str | None:
    """Why a pass is known not to pay off for this model here (None: try it). Auto-optimize leaves
    such recipes out and lists the reason in ``skipped``; a manual pipeline can still run them."""
    from workers.passes.pruning import NO_DENSE_SPEEDUP

    params = sum(p.numel() for p in model.parameters()) or 1
    linear_params = sum(
        p.numel() for m in model.modules() if isinstance(m, nn.Linear | nn.LSTM) for p in m.parameters()
    )
    has_attention = any(isinstance(m, nn.MultiheadAttention) for m in model.modules())
    on_cpu = not ctx.device.startswith("cuda")
    if pass_name == "prune_l1_unstructured":
        return f"unstructured pruning: {NO_DENSE_SPEEDUP}"
    if pass_name == "quantize_dynamic" and linear_params < 0.25 * params:
        return (
            f"Linear/LSTM layers hold {linear_params / params:.0%} of the parameters; torch's dynamic "
            "int8 quantizes only those, so convolutions would stay fp32"
        )
    if pass_name == "half_precision" and on_cpu and not _native_bf16():
        return "this CPU has no native bf16/fp16 arithmetic (AVX512-BF16 or AMX), so 16-bit runs emulated"
    if pass_name.startswith("torchao_"):
        from workers.passes.gpu import torchao_available

        missing = torchao_available()
        if missing:
            return missing
    if pass_name == "prune_structured" and has_attention and ctx.data is None:
        return (
            "attention model without a data set: only the feed-forward width can be pruned, and "
            "fine-tuning it back on generated tokens takes minutes an epoch on a CPU"
        )
    return None


def _native_bf16() -> bool:
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def default_recipes(model: nn.Module, ctx: PassContext) -> tuple[list[list[dict[str, Any]]], list[str]]:
    """(recipes to try, "label: reason" for each left out) for this model, device and data."""
    has_data = ctx.data is not None
    recipes = gpu_recipes(has_data) if ctx.device.startswith("cuda") else cpu_recipes(has_data)
    kept, skipped = [], []
    for recipe in recipes:
        reason = next(filter(None, (not_applicable(model, ctx, item["name"]) for item in recipe)), None)
        if reason is None:
            kept.append(recipe)
        else:
            skipped.append(f"{label_of(recipe)}: {reason}")
    return kept, skipped


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
        # torchao's layers under torch.compile; float8 and 2:4 are refused by plan() on GPUs
        # older than their declared compute capability, and listed as skipped.
        [{"name": "torchao_int8_weight_only"}],
        [{"name": "torchao_int8_dynamic"}],
        [{"name": "torchao_float8"}],
        [{"name": "sparsity_2_4"}],
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
    skipped: list[str] = []
    if recipes is None:
        recipes, skipped = default_recipes(model, ctx)
    ctx.step("measuring the original")
    start = Candidate(model)
    baseline = Measured(
        "original", [], measure(model), measure_fidelity(model, model, ctx), size_report(start), start.backend
    )
    baseline.module, baseline.candidate = model, start
    cache = _PrefixCache(start)
    candidates: list[Measured] = []
    runnable = []
    capability = ctx.extra.get("compute_capability")
    for recipe in recipes:
        try:
            runnable.append(
                (
                    recipe,
                    plan(
                        registry, recipe, device=ctx.device, has_labeled_data=has_data, capability=capability
                    ),
                )
            )
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
            except Cancelled:
                raise  # the user's cancel ends the search, it is not one candidate's failure
            except Exception as exc:  # a candidate that cannot be measured is reported, the search goes on
                item.error = f"{type(exc).__name__}: {exc}"[:2000]
        _judge(item, baseline, constraints)
        candidates.append(item)
    chosen, best_effort, verdict = choose(baseline, candidates, constraints)
    return SearchResult(
        baseline, candidates, chosen, best_effort, pareto_front([baseline, *candidates]), skipped, verdict
    )


def choose(
    baseline: Measured, candidates: Sequence[Measured], constraints: Constraints
) -> tuple[Measured | None, Measured | None, str]:
    """(chosen, best effort, verdict): the fastest candidate that meets every constraint, never one
    slower than the original; when none does, the most accurate of the faster ones, shown only."""
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
    return chosen, best_effort, verdict


def remeasure(result: SearchResult, measure: Measure, constraints: Constraints) -> SearchResult:
    """The same candidates timed again with another ``measure`` (another batch size) and chosen by the
    same rule; fidelity and size do not depend on the batch size and are kept."""

    def again(item: Measured) -> Measured:
        copy = dataclasses.replace(item, reasons=[], latency=None)
        if item.module is not None and item.error is None and all(r.ok for r in item.reports):
            try:
                copy.latency = measure(item.module)
            except Cancelled:
                raise
            except Exception as exc:  # reported like in the search, the others still count
                copy.error = f"{type(exc).__name__}: {exc}"[:2000]
        return copy

    baseline = again(result.baseline)
    candidates = [again(c) for c in result.candidates]
    for item in candidates:
        _judge(item, baseline, constraints)
    chosen, best_effort, verdict = choose(baseline, candidates, constraints)
    return SearchResult(
        baseline,
        candidates,
        chosen,
        best_effort,
        pareto_front([baseline, *candidates]),
        list(result.skipped),
        verdict,
    )


class _Sealed(nn.Module):
    """Hides a candidate from the harness's ``model.to(device, dtype)``: an fp16 or int8 candidate
    must be timed as it was made, not cast back to the job's fp32."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        object.__setattr__(self, "_inner", inner)  # not registered, so .to() and .eval() skip it

    def forward(self, x):
        return self._inner(x)


def harness_measure(
    input_spec,
    batch_size: int,
    device: str,
    threads: int,
    budget_s: float = 3.0,
    should_stop: Callable[[], bool] | None = None,
) -> Measure:
    """The production ``measure``: perfmon's harness at one batch size, as a benchmark job times it.
    ``should_stop`` is polled between timing blocks (a job's cancel): ``Cancelled`` is raised then,
    so a cancel does not wait for the measurement's budget to run out."""
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
        run = run_benchmark(_Sealed(module.eval()), input_spec, spec, should_stop=should_stop).to_json()[
            "runs"
        ][0]
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
