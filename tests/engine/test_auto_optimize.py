"""Auto-optimize's choice, tested as a decision: latencies come from a table, not a clock."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from workers import zoo
from workers.passes import PASSES
from workers.passes.context import PassContext, PassOutcome
from workers.passes.data import digits_for_model
from workers.passes.declare import PassDecl
from workers.passes.search import Constraints, auto_optimize, harness_measure, pareto_front


class Tagged(nn.Module):
    """The original model's outputs, optionally spoiled, with a tag the latency table looks up."""

    def __init__(self, inner: nn.Module, tag: str, noise: float = 0.0) -> None:
        super().__init__()
        self.inner, self.tag, self.noise = inner, tag, noise

    def forward(self, x):
        out = self.inner(x)
        if self.noise:
            out = out + self.noise * torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
        return out


def _variant(tag: str, noise: float = 0.0) -> PassDecl:
    def run(candidate, params, ctx):
        return PassOutcome(candidate.after(tag, module=Tagged(candidate.module, tag, noise), backend=tag))

    return PassDecl(name=tag, title=tag, summary=tag, run_ref=run)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    entry = zoo.get("SimpleModel")
    model = entry.build(tmp_path_factory.mktemp("zoo"))
    ctx = PassContext(input_spec=entry.input_spec, data=digits_for_model(entry))
    return model, ctx


def _search(model, ctx, variants, latencies, **constraints):
    registry = {v.name: v for v in variants}
    table = lambda module: {"p50_ms": latencies[getattr(module, "tag", "original")]}  # noqa: E731
    recipes = [[{"name": v.name}] for v in variants]
    return auto_optimize(model, ctx, registry, table, Constraints(**constraints), recipes=recipes)


def test_a_fast_but_inaccurate_candidate_is_never_chosen(setup) -> None:
    model, ctx = setup
    variants = [_variant("fast_but_wrong", noise=20.0), _variant("a_bit_faster")]
    result = _search(model, ctx, variants, {"original": 1.0, "fast_but_wrong": 0.1, "a_bit_faster": 0.8})
    assert result.chosen.label == "a_bit_faster"
    wrong = next(c for c in result.candidates if c.label == "fast_but_wrong")
    assert not wrong.qualifies and "accuracy drops" in wrong.reasons[0]


def test_of_two_passing_candidates_the_fastest_is_chosen_not_the_first(setup) -> None:
    model, ctx = setup
    variants = [_variant("first_ok"), _variant("second_faster")]
    result = _search(model, ctx, variants, {"original": 1.0, "first_ok": 0.7, "second_faster": 0.4})
    assert result.chosen.label == "second_faster"
    assert "2.50x faster" in result.verdict


def test_a_candidate_slower_than_the_original_never_qualifies(setup) -> None:
    model, ctx = setup
    result = _search(model, ctx, [_variant("slower")], {"original": 1.0, "slower": 1.3})
    assert result.chosen is None and result.best_effort is None
    assert result.verdict == "no candidate was faster than the original; nothing is registered"
    assert "not faster than the original (1.30x its p50)" in result.candidates[0].reasons


def test_when_nothing_qualifies_the_best_effort_is_shown_not_chosen(setup) -> None:
    model, ctx = setup
    variants = [_variant("fast_but_wrong", noise=20.0), _variant("faster_but_off_target")]
    result = _search(
        model,
        ctx,
        variants,
        {"original": 1.0, "fast_but_wrong": 0.1, "faster_but_off_target": 0.8},
        latency_target_ms=0.5,
    )
    assert result.chosen is None
    assert result.best_effort.label == "faster_but_off_target"
    assert "It is shown, not registered." in result.verdict and "0.5 ms target" in result.verdict


def test_the_pareto_front_holds_the_undominated_points(setup) -> None:
    model, ctx = setup
    variants = [_variant("fast_but_wrong", noise=20.0), _variant("ok"), _variant("dominated")]
    result = _search(
        model, ctx, variants, {"original": 1.0, "fast_but_wrong": 0.1, "ok": 0.5, "dominated": 0.9}
    )
    assert set(result.pareto) == {"fast_but_wrong", "ok"}
    assert pareto_front([]) == []


def test_the_time_budget_skips_the_remaining_candidates(setup) -> None:
    model, ctx = setup
    ticks = iter(range(0, 1000, 10))
    variants = [_variant("one"), _variant("two"), _variant("three")]
    registry = {v.name: v for v in variants}
    table = lambda module: {"p50_ms": 0.5 if hasattr(module, "tag") else 1.0}  # noqa: E731
    result = auto_optimize(
        model,
        ctx,
        registry,
        table,
        Constraints(time_budget_s=15),
        recipes=[[{"name": v.name}] for v in variants],
        clock=lambda: next(ticks),
    )
    assert [c.label for c in result.candidates] == ["one"]
    assert result.skipped == ["two: the 15 s time budget ran out", "three: the 15 s time budget ran out"]


def test_the_real_cpu_recipes_run_and_measure_with_the_harness(setup) -> None:
    """The default CPU search on SimpleModel with the real harness: whatever the timings on this
    machine, the choice is consistent with the rule (fastest qualifying, never slower)."""
    model, ctx = setup
    measure = harness_measure(ctx.input_spec, batch_size=32, device="cpu", threads=1, budget_s=0.5)
    recipes = [
        [{"name": "onnxruntime"}, {"name": "ort_quantize_dynamic"}],
        [
            {"name": "prune_structured", "params": {"amount": 0.5, "finetune_epochs": 3}},
            {"name": "onnxruntime"},
            {"name": "ort_quantize_dynamic"},
        ],
    ]
    result = auto_optimize(model, ctx, PASSES, measure, Constraints(), recipes=recipes)
    assert len(result.candidates) == 2 and all(c.latency for c in result.candidates)
    qualified = [c for c in result.candidates if c.qualifies]
    if qualified:
        assert result.chosen.p50_ms == min(c.p50_ms for c in qualified)
        assert result.chosen.p50_ms < result.baseline.p50_ms
    for c in result.candidates:
        assert c.size["params"] <= result.baseline.size["params"]
    assert dataclasses.asdict(Constraints()) == {
        "max_accuracy_drop": 0.01,
        "latency_target_ms": None,
        "time_budget_s": 600.0,
    }


def test_passes_known_not_to_pay_off_are_left_out_with_a_reason() -> None:
    from workers.passes.search import default_recipes

    resnet = zoo.get("SmallResNet")
    recipes, skipped = default_recipes(resnet.build(), PassContext(input_spec=resnet.input_spec))
    names = {item["name"] for recipe in recipes for item in recipe}
    assert "quantize_dynamic" not in names and {"onnxruntime", "prune_structured"} <= names
    assert any(
        line.startswith("quantize_dynamic: Linear/LSTM layers hold 0% of the parameters") for line in skipped
    )
    assert not any(item["name"] == "distill" for recipe in recipes for item in recipe)  # no data set

    transformer = zoo.get("TinyTransformer")
    recipes, skipped = default_recipes(transformer.build(), PassContext(input_spec=transformer.input_spec))
    assert not any(item["name"] == "prune_structured" for recipe in recipes for item in recipe)
    assert any("attention model without a data set" in line for line in skipped)
    assert [{"name": "onnxruntime"}, {"name": "ort_quantize_dynamic"}] in recipes


def test_the_same_candidates_timed_at_another_batch_size_are_chosen_by_the_same_rule(setup) -> None:
    from workers.passes.search import remeasure

    model, ctx = setup
    variants = [_variant("wins_at_32"), _variant("wins_at_1"), _variant("fast_but_wrong", noise=20.0)]
    at_32 = {"original": 1.0, "wins_at_32": 0.3, "wins_at_1": 0.6, "fast_but_wrong": 0.1}
    result = _search(model, ctx, variants, at_32)
    assert result.chosen.label == "wins_at_32"
    at_1 = {"original": 1.0, "wins_at_32": 1.2, "wins_at_1": 0.9, "fast_but_wrong": 0.1}
    again = remeasure(
        result, lambda module: {"p50_ms": at_1[getattr(module, "tag", "original")]}, Constraints()
    )
    assert again.chosen.label == "wins_at_1"
    slower = next(c for c in again.candidates if c.label == "wins_at_32")
    assert "not faster than the original (1.20x its p50)" in slower.reasons
    assert not next(c for c in again.candidates if c.label == "fast_but_wrong").qualifies
    assert result.chosen.label == "wins_at_32"  # the first result is left as it was


def test_a_cancel_ends_the_search_instead_of_failing_one_candidate(setup) -> None:
    """The harness raises Cancelled at its next poll once the job is cancelled; the search used to
    catch it as one candidate's measurement error and go on measuring the rest."""
    from workers.bench.progress import Cancelled

    model, ctx = setup
    measured = []

    def measure(module):
        measured.append(getattr(module, "tag", "original"))
        if len(measured) == 2:
            raise Cancelled()
        return {"p50_ms": 1.0}

    variants = [_variant("first"), _variant("second"), _variant("third")]
    registry = {v.name: v for v in variants}
    with pytest.raises(Cancelled):
        auto_optimize(model, ctx, registry, measure, recipes=[[{"name": v.name}] for v in variants])
    assert measured == ["original", "first"]


def test_the_harness_measure_stops_when_asked(setup) -> None:
    from workers.bench.progress import Cancelled

    model, ctx = setup
    measure = harness_measure(ctx.input_spec, 8, "cpu", 1, budget_s=60.0, should_stop=lambda: True)
    with pytest.raises(Cancelled):
        measure(model)
