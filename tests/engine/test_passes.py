"""Optimization passes on zoo models: what each makes, what it reports, and how a pipeline fails."""

from __future__ import annotations

import pytest
import torch

from workers import zoo
from workers.passes import PASSES, InvalidPassParams, plan
from workers.passes.candidate import Candidate
from workers.passes.context import PassContext
from workers.passes.data import digits_for_model
from workers.passes.fidelity import measure_fidelity, relative_drop
from workers.passes.pipeline import run_pipeline
from workers.passes.size import size_report
from workers.passes.training import accuracy, kd_loss


@pytest.fixture(scope="module")
def simple(tmp_path_factory):
    entry = zoo.get("SimpleModel")
    model = entry.build(tmp_path_factory.mktemp("zoo"))
    return entry, model


@pytest.fixture(scope="module")
def digits_ctx(simple):
    entry, _ = simple
    torch.set_num_threads(1)
    return PassContext(input_spec=entry.input_spec, data=digits_for_model(entry))


def _run(model, names, ctx, params=None, has_data=True):
    requested = [{"name": n, "params": (params or {}).get(n, {})} for n in names]
    steps = plan(PASSES, requested, device=ctx.device, has_labeled_data=has_data)
    return run_pipeline(Candidate(model), steps, ctx)


def test_unstructured_pruning_reports_real_sparsity_and_says_it_will_not_speed_up(simple, digits_ctx) -> None:
    _, model = simple
    candidate, (report,) = _run(
        model, ["prune_l1_unstructured"], digits_ctx, {"prune_l1_unstructured": {"amount": 0.4}}
    )
    assert report.ok
    assert report.details["weight_sparsity"] == pytest.approx(0.4, abs=0.01)
    assert any("do not expect this model to run faster" in note for note in report.notes)
    sizes = size_report(candidate)
    assert sizes["params"] == sum(p.numel() for p in model.parameters())  # same dense shapes
    assert sizes["nonzero_params"] < 0.65 * sizes["params"]
    assert not any(hasattr(m, "weight_mask") for m in candidate.module.modules())  # masks made permanent


def test_structured_pruning_removes_neurons_and_keeps_accuracy_after_fine_tuning(simple, digits_ctx) -> None:
    _, model = simple
    candidate, (report,) = _run(
        model, ["prune_structured"], digits_ctx, {"prune_structured": {"amount": 0.5}}
    )
    assert report.ok, report.error
    pruned = candidate.module
    assert pruned.fc1.out_features == 128 and pruned.fc2.in_features == 128  # consistent across layers
    assert pruned.fc3.out_features == 10  # the output contract is never pruned
    assert pruned(torch.rand(3, 784)).shape == (3, 10)
    # Fewer multiply-adds per sample: the work the dense kernels do really shrinks.
    macs = lambda m: sum(layer.in_features * layer.out_features for layer in (m.fc1, m.fc2, m.fc3))  # noqa: E731
    assert macs(pruned) < 0.55 * macs(model)
    fidelity = measure_fidelity(model, pruned, digits_ctx)
    assert relative_drop(fidelity["accuracy_original"], fidelity["accuracy"]) <= 0.02


def test_onnx_export_matches_torch_and_runs_any_batch_size(simple, digits_ctx) -> None:
    _, model = simple
    candidate, (report,) = _run(model, ["onnxruntime"], digits_ctx)
    assert report.ok, report.error
    assert candidate.form == "onnx" and candidate.onnx_bytes
    assert report.details["opset"] == 17 and report.details["max_abs_diff"] < 1e-4
    x = torch.rand(7, 784)
    with torch.inference_mode():
        assert torch.allclose(candidate.module(x), model(x), atol=1e-4)


def test_static_int8_is_calibrated_on_the_real_training_data(simple, digits_ctx) -> None:
    _, model = simple
    candidate, reports = _run(model, ["onnxruntime", "ort_quantize_static"], digits_ctx)
    assert [r.ok for r in reports] == [True, True], [r.error for r in reports]
    assert reports[1].details["calibration_source"] == "data"
    assert "digits train split" in reports[1].notes[0]
    fidelity = measure_fidelity(model, candidate.module, digits_ctx)
    assert fidelity["agreement"] >= 0.95


def test_dynamic_int8_quantizes_every_linear_layer(simple, digits_ctx) -> None:
    _, model = simple
    candidate, (report,) = _run(model, ["quantize_dynamic"], digits_ctx)
    assert report.ok and report.details["quantized_layers"] == 3
    assert size_report(candidate)["size_bytes"] < size_report(Candidate(model))["size_bytes"] / 3
    assert measure_fidelity(model, candidate.module, digits_ctx)["agreement"] >= 0.95


def test_distillation_trains_a_student_better_than_an_untrained_one(simple, digits_ctx) -> None:
    _, model = simple
    candidate, (report,) = _run(model, ["distill"], digits_ctx, {"distill": {"epochs": 6, "width": 0.25}})
    assert report.ok, report.error
    student = candidate.module
    assert student.fc1.out_features == 64
    untrained = type(model)()
    torch.nn.init.zeros_(untrained.fc3.weight)
    data = digits_ctx.data
    assert accuracy(student, data.test_x, data.test_y) > accuracy(untrained, data.test_x, data.test_y) + 0.5
    assert [h["epoch"] for h in report.details["epochs"]][:2] == [1, 2]


def test_kd_loss_is_the_articles_soft_and_hard_mix() -> None:
    student, teacher = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 2.0]])
    labels = torch.tensor([1])
    soft_only = kd_loss(student, teacher, None, temperature=4.0)
    mixed = kd_loss(student, teacher, labels, temperature=4.0, alpha=0.7)
    hard = torch.nn.functional.cross_entropy(student, labels)
    assert mixed == pytest.approx(0.7 * soft_only + 0.3 * hard)
    assert kd_loss(teacher, teacher, None) == pytest.approx(0.0, abs=1e-6)


def test_a_failing_pass_is_reported_and_the_others_still_run(simple, digits_ctx) -> None:
    _, model = simple
    broken = PASSES["half_precision"].__class__(
        **{**PASSES["half_precision"].__dict__, "name": "broken", "run_ref": lambda c, p, ctx: 1 / 0}
    )
    registry = {**PASSES, "broken": broken}
    steps = plan(
        registry, [{"name": "broken"}, {"name": "prune_l1_unstructured"}], device="cpu", has_labeled_data=True
    )
    candidate, reports = run_pipeline(Candidate(model), steps, digits_ctx)
    assert [r.ok for r in reports] == [False, True]
    assert reports[0].error == "ZeroDivisionError: division by zero"
    assert candidate.passes == ("prune_l1_unstructured",)


def test_an_int8_graph_pass_after_a_failed_export_says_why_it_was_skipped(simple, digits_ctx) -> None:
    _, model = simple
    failing_export = PASSES["onnxruntime"].__class__(
        **{**PASSES["onnxruntime"].__dict__, "run_ref": lambda c, p, ctx: 1 / 0}
    )
    registry = {**PASSES, "onnxruntime": failing_export}
    steps = plan(
        registry,
        [{"name": "onnxruntime"}, {"name": "ort_quantize_dynamic"}],
        device="cpu",
        has_labeled_data=True,
    )
    _, reports = run_pipeline(Candidate(model), steps, digits_ctx)
    assert [r.ok for r in reports] == [False, False]
    assert "an earlier pass failed" in reports[1].error


@pytest.mark.parametrize(
    ("requested", "message"),
    [
        ([{"name": "nope"}], "unknown pass 'nope'"),
        (
            [{"name": "prune_structured", "params": {"amount": 2}}],
            "pass 'prune_structured', parameter 'amount': 2 is outside",
        ),
        ([{"name": "prune_structured", "params": {"ratio": 0.5}}], "has no parameter 'ratio'"),
        ([{"name": "ort_quantize_dynamic"}], "applies to onnx models, and the model is torch"),
        ([{"name": "distill"}], "needs a labeled data set"),
        ([{"name": "quantize_dynamic"}], "runs on cpu only, not cuda:0"),
        ([], "at least one pass"),
    ],
)
def test_plans_that_cannot_run_are_refused_naming_the_pass(requested, message) -> None:
    device = "cuda:0" if requested and requested[0]["name"] == "quantize_dynamic" else "cpu"
    with pytest.raises(InvalidPassParams, match=message.replace("(", r"\(")):
        plan(PASSES, requested, device=device, has_labeled_data=False)


def test_the_cache_is_measured_on_a_trace_and_says_it_only_helps_repeats(simple, digits_ctx) -> None:
    _, model = simple
    params = {
        "inference_cache": {"requests": 200, "repeat_fraction": 0.6, "distinct_pool": 20, "capacity": 50}
    }
    candidate, (report,) = _run(model, ["inference_cache"], digits_ctx, params)
    trace = report.details["trace"]
    assert trace["requests"] == 200
    assert trace["hit_rate"] == pytest.approx(trace["repeat_fraction"], abs=0.05)
    assert 0.4 < trace["hit_rate"] < 0.8
    assert any("only helps requests that repeat" in note for note in report.notes)
    assert candidate.module is model  # the timed model is unchanged


def test_every_pass_declares_itself_for_the_api() -> None:
    from workers.passes import catalogue

    listed = {p["name"]: p for p in catalogue()}
    assert set(listed) == set(PASSES)
    amount = next(p for p in listed["prune_structured"]["params"] if p["name"] == "amount")
    assert (amount["low"], amount["high"], amount["default"]) == (0.05, 0.9, 0.5)


def test_listing_and_checking_passes_does_not_import_torch() -> None:
    """The web process lists passes (GET /api/passes) and checks pipelines without carrying torch."""
    import subprocess
    import sys

    code = (
        "import sys, workers.passes as p; "
        "p.plan(p.PASSES, [{'name': 'onnxruntime'}], device='cpu', has_labeled_data=False); p.catalogue(); "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run(
        [sys.executable, "-c", code], check=True, cwd=str(__import__("pathlib").Path(__file__).parents[2])
    )


def test_structured_pruning_on_a_resnet_removes_channels_and_keeps_the_output() -> None:
    entry = zoo.get("SmallResNet")
    model = entry.build()
    ctx = PassContext(input_spec=entry.input_spec)
    candidate, (report,) = _run(
        model, ["prune_structured"], ctx, {"prune_structured": {"amount": 0.5, "finetune_epochs": 0}}, False
    )
    assert report.ok, report.error
    pruned = candidate.module
    assert report.details["params_after"] < 0.5 * report.details["params_before"]
    assert pruned.stem[0].out_channels == 8 and pruned.stem[1].num_features == 8  # BatchNorm follows
    assert pruned.fc.out_features == 10
    x = entry.input_spec.make(3)
    assert pruned(x).shape == (3, 10)


def test_structured_pruning_on_a_transformer_prunes_only_the_feed_forward_width() -> None:
    entry = zoo.get("TinyTransformer")
    model = entry.build()
    ctx = PassContext(input_spec=entry.input_spec)
    candidate, (report,) = _run(
        model, ["prune_structured"], ctx, {"prune_structured": {"amount": 0.5, "finetune_epochs": 0}}, False
    )
    assert report.ok, report.error
    layer = candidate.module.encoder.layers[0]
    assert (layer.linear1.out_features, layer.linear2.in_features) == (512, 512)
    assert layer.self_attn.in_proj_weight.shape == (768, 256)  # heads and residual width untouched
    assert any("only the feed-forward" in note for note in report.notes)
    tokens = entry.input_spec.make(2)
    with torch.inference_mode():
        assert candidate.module(tokens).shape == (2, 10)


class _TokenClassifier(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(50, 16)
        self.head = torch.nn.Linear(16, 4)

    def forward(self, tokens):
        return self.head(self.embedding(tokens).mean(dim=1))


def test_static_int8_calibrates_a_model_that_takes_int64_tokens() -> None:
    """Calibration batches were cast to float32, which ORT refused for TinyTransformer's token ids."""
    spec = zoo.InputSpec(shape=(None, 12), dtype="int64", low=0, high=50)
    ctx = PassContext(input_spec=spec)
    torch.manual_seed(0)
    model = _TokenClassifier().eval()
    candidate, reports = _run(
        model,
        ["onnxruntime", "ort_quantize_static"],
        ctx,
        {"ort_quantize_static": {"calibration_batches": 2}},
        False,
    )
    assert [r.ok for r in reports] == [True, True], [r.error for r in reports]
    assert reports[1].details["calibration_source"] == "generated"
    assert candidate.module(spec.make(3)).shape == (3, 4)


def test_dynamic_int8_on_a_transformer_runs_and_stays_close_to_the_original() -> None:
    """nn.TransformerEncoderLayer's fast path read the int8 Linear's ``weight`` method as a tensor
    and raised AttributeError on the first call, so TinyTransformer's int8 candidate never ran."""
    entry = zoo.get("TinyTransformer")
    model = entry.build()
    ctx = PassContext(input_spec=entry.input_spec)
    candidate, (report,) = _run(model, ["quantize_dynamic"], ctx, has_data=False)
    assert report.ok, report.error
    tokens = entry.input_spec.make(2)
    with torch.inference_mode():
        got, expected = candidate.module(tokens), model(tokens)
    assert got.shape == (2, 10)
    assert torch.allclose(got, expected, atol=0.05)
