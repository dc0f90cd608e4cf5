"""Is auto-optimize's choice worth it? Every single technique against auto's choice, same run.

For each zoo model (default: SimpleModel, PerformanceTestModel, SmallResNet, TinyTransformer) on
this CPU with 1 thread: auto-optimize's search at batch 32 with perfmon's harness (its recipes
include every single technique that applies, and combinations), the techniques it leaves out
measured alongside, then the same candidates timed again at batch 1 and chosen by the same rule.
Fidelity is held-out digits accuracy for the MLPs, top-1 agreement with the original on generated
inputs for SmallResNet and TinyTransformer (they have no data set).

Printed: one table per model and batch size (p50, speed-up over eager fp32, accuracy or agreement,
relative drop, whether it qualifies), then the ratios the targets are about:
  auto / best qualifying single technique (<= 1.00 wanted, from the table)
  ORT dynamic int8 alone / auto at batch 32 (>= 1.5 wanted on the MLPs), re-measured in
  alternating rounds (A B A B ...) right after the search, median over rounds, so a change in
  the machine's load hits both alike.

Usage: .venv/bin/python bench/optimizer_quality.py [--models SimpleModel,SmallResNet]
       [--batch-sizes 1,32] [--budget 2.0] [--rounds 3] [--weights-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workers import zoo  # noqa: E402
from workers.passes import PASSES  # noqa: E402
from workers.passes.context import PassContext  # noqa: E402
from workers.passes.data import digits_for_model  # noqa: E402
from workers.passes.fidelity import relative_drop  # noqa: E402
from workers.passes.search import (  # noqa: E402
    Constraints,
    auto_optimize,
    default_recipes,
    harness_measure,
    label_of,
    not_applicable,
    remeasure,
)

MODELS = ("SimpleModel", "PerformanceTestModel", "SmallResNet", "TinyTransformer")
THREADS = 1
ORT_FP32 = [{"name": "onnxruntime"}]
ORT_INT8 = [{"name": "onnxruntime"}, {"name": "ort_quantize_dynamic"}]
# One recipe per single technique; those auto's recipes lack are measured alongside.
SINGLES = [
    [{"name": "prune_l1_unstructured"}],
    [{"name": "prune_structured", "params": {"amount": 0.5, "finetune_epochs": 5}}],
    [{"name": "distill", "params": {"width": 0.5}}],
    [{"name": "quantize_dynamic"}],
    [{"name": "half_precision", "params": {"dtype": "bf16"}}],
    ORT_FP32,
    ORT_INT8,
    [{"name": "onnxruntime"}, {"name": "ort_quantize_static"}],
]


def _is_single(recipe) -> bool:
    names = [item["name"] for item in recipe]
    return len(names) == 1 or names in (
        ["onnxruntime", "ort_quantize_dynamic"],
        ["onnxruntime", "ort_quantize_static"],
    )


def _score_text(item, baseline) -> tuple[str, str]:
    score, base = item.score(), baseline.score()
    if score is None:
        return "-", "-"
    return f"{score:.3f}", f"{relative_drop(base, score):+.1%}" if base else "-"


def print_table(title: str, result, extras, constraints: Constraints) -> None:
    base = result.baseline
    print(f"\n{title}")
    print(f"  {'candidate':<96} {'p50 ms':>9} {'x eager':>8} {'score':>6} {'drop':>7}  verdict")
    rows = [(base, "eager fp32 (original)")]
    rows += [(c, c.label + ("" if _is_single(c.passes) else " [combo]")) for c in result.candidates]
    rows += [(c, c.label + " [single, not in auto's]") for c in extras.candidates]
    for item, label in rows:
        p50 = item.p50_ms
        speed = f"{base.p50_ms / p50:.2f}" if p50 and base.p50_ms else "-"
        score, drop = _score_text(item, base)
        if item is base:
            verdict = ""
        elif item is result.chosen:
            verdict = "CHOSEN"
        elif item.qualifies:
            verdict = "ok"
        else:
            verdict = (item.error or "; ".join(item.reasons))[:110]  # an error says more than "nan x"
        p50_text = f"{p50:.4f}" if p50 else "-"
        print(f"  {label[:96]:<96} {p50_text:>9} {speed:>8} {score:>6} {drop:>7}  {verdict}")
    print(f"  verdict: {result.verdict}")


def alternate(a, b, measure, rounds: int) -> float:
    """Median over rounds of p50(a) / p50(b), measured a then b in each round."""
    ratios = []
    for _ in range(rounds):
        ratios.append(measure(a)["p50_ms"] / measure(b)["p50_ms"])
    return statistics.median(ratios)


def bench_model(name: str, batch_sizes, budget_s: float, rounds: int, weights_dir: Path) -> list[str]:
    entry = zoo.get(name)
    model = entry.build(weights_dir)
    data = digits_for_model(entry) if entry.dataset == "digits" else None
    ctx = PassContext(input_spec=entry.input_spec, data=data)
    constraints = Constraints()
    recipes, _ = default_recipes(model, ctx)
    # A technique auto already tries (with its own parameters) is not measured twice.
    tried = {tuple(item["name"] for item in r) for r in recipes}
    extras = [
        r
        for r in SINGLES
        if tuple(item["name"] for item in r) not in tried and (data is not None or r[0]["name"] != "distill")
    ]
    # 16-bit floats without native support are emulated: 10 to 40x slower on the MLPs here, and a
    # single batch-32 TinyTransformer call would take minutes, so only the small models measure it.
    refused = []
    if entry.dataset is None:
        for recipe in [r for r in extras if r[0]["name"] == "half_precision"]:
            reason = not_applicable(model, ctx, "half_precision")
            if reason:
                extras.remove(recipe)
                refused.append(f"{label_of(recipe)}: not measured: {reason}")
        # Auto leaves structured pruning out of an attention model without data (fine-tuning on
        # generated tokens takes minutes an epoch here); the single technique is still measured,
        # pruned without fine-tuning, so the table shows what it alone costs in agreement.
        for recipe in [r for r in extras if r[0]["name"] == "prune_structured"]:
            reason = not_applicable(model, ctx, "prune_structured")
            if reason:
                extras[extras.index(recipe)] = [
                    {"name": "prune_structured", "params": {"amount": 0.5, "finetune_epochs": 0}}
                ]
                refused.append(f"prune_structured measured without fine-tuning: {reason}")
    search_batch = max(batch_sizes)
    started = time.monotonic()
    measure = harness_measure(entry.input_spec, search_batch, "cpu", THREADS, budget_s)
    result = auto_optimize(model, ctx, PASSES, measure, constraints)  # its own default recipes
    extra = auto_optimize(model, ctx, PASSES, measure, constraints, recipes=extras)
    print(
        f"\n=== {name} ({'digits accuracy' if data else 'agreement with the original, generated inputs'}); "
        f"search took {time.monotonic() - started:.0f} s; load average {os.getloadavg()[0]:.1f}"
    )
    for line in result.skipped:
        print(f"  auto skipped: {line}")
    for line in refused:
        print(f"  bench: {line}")
    summary = []
    for batch in sorted(batch_sizes):
        if batch == search_batch:
            at, extra_at, at_measure = result, extra, measure
        else:
            at_measure = harness_measure(entry.input_spec, batch, "cpu", THREADS, budget_s)
            at, extra_at = (
                remeasure(result, at_measure, constraints),
                remeasure(extra, at_measure, constraints),
            )
        print_table(
            f"{name}, batch {batch}, 1 thread (load average {os.getloadavg()[0]:.1f})",
            at,
            extra_at,
            constraints,
        )
        singles = [c for c in [*at.candidates, *extra_at.candidates] if _is_single(c.passes) and c.qualifies]
        best_single = min(singles, key=lambda c: c.p50_ms, default=None)
        chosen = at.chosen
        line = f"{name} b{batch}: auto = {chosen.label if chosen else 'none'}"
        if chosen and best_single:
            line += (
                f"; auto / best single ({best_single.label}) = {chosen.p50_ms / best_single.p50_ms:.2f}"
                f"; eager / auto = {at.baseline.p50_ms / chosen.p50_ms:.2f}"
            )
            drop = relative_drop(at.baseline.score(), chosen.score()) if at.baseline.score() else 0.0
            line += f"; drop {drop:+.1%}"
        if chosen:
            ratio = alternate(at.baseline.module, chosen.module, at_measure, rounds)
            line += f"; eager / auto alternated {ratio:.2f}"
        if chosen and best_single and best_single is not chosen:
            ratio = alternate(best_single.module, chosen.module, at_measure, rounds)
            line += f"; best single / auto alternated {ratio:.2f}"
        int8 = next((c for c in at.candidates if c.passes == ORT_INT8 and c.p50_ms), None)
        if chosen and int8 and int8 is not chosen:
            ratio = alternate(int8.module, chosen.module, at_measure, rounds)
            line += f"; ORT int8 / auto = {int8.p50_ms / chosen.p50_ms:.2f} (table), {ratio:.2f} (alternated, median of {rounds})"
        elif chosen and int8:
            line += "; ORT int8 / auto = 1.00 (auto chose ORT int8)"
        summary.append(line)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--batch-sizes", default="1,32")
    parser.add_argument("--budget", type=float, default=2.0, help="harness seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds for the int8 ratio")
    parser.add_argument("--weights-dir", type=Path, default=Path(tempfile.gettempdir()) / "perfmon-bench-zoo")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import logging

    logging.getLogger().setLevel(logging.ERROR)  # onnxruntime.quantization's advice, once per graph
    torch.set_num_threads(THREADS)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    started = time.monotonic()
    print(
        f"torch {torch.__version__}, {os.cpu_count()} CPUs, {THREADS} thread, budget {args.budget:g} s a measurement, "
        f"load average at start {os.getloadavg()[0]:.1f}"
    )
    summary = []
    for name in args.models.split(","):
        summary += bench_model(name, batch_sizes, args.budget, args.rounds, args.weights_dir)
    print(
        "\nratios (targets: auto / best single <= 1.00 at <= 1% drop; ORT int8 / auto >= 1.5 on the MLPs at batch 32)"
    )
    for line in summary:
        print(f"  {line}")
    print(f"\ntotal {time.monotonic() - started:.0f} s; load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
