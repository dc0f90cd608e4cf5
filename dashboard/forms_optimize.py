"""The optimization form: a pipeline of passes (built in the browser from the pass catalogue and sent
as JSON in one hidden field) or "auto" with its constraints. Validation is the API's own
(``validate_submission``); a refused pass is placed beside that pass."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from dashboard.forms import ANY_NODE, IntegerListField, model_choices, target_choices
from dashboard.jobspec import InvalidJob, validate_submission

MODES = [("passes", "Passes I choose"), ("auto", "Auto: search for the fastest that keeps accuracy")]


class OptimizeForm(forms.Form):
    model = forms.ChoiceField(choices=[])
    target = forms.ChoiceField(choices=[], initial=ANY_NODE, label="Run on", required=False)
    mode = forms.ChoiceField(choices=MODES, initial="passes", widget=forms.RadioSelect, label="Optimize with")
    # [{"name": ..., "params": {...}}, ...] in order, written by static/js/optimize-form.js.
    passes = forms.CharField(widget=forms.HiddenInput, required=False)
    # Not required by the form: auto hides it, and an empty list is refused by the job spec in words.
    batch_sizes = IntegerListField(
        initial="32",
        required=False,
        help_text="measured before and after each pass: comma-separated, at most 4",
    )
    threads = forms.IntegerField(
        min_value=1,
        max_value=512,
        initial=1,
        label="CPU threads",
        error_messages={"max_value": "At most %(limit_value)s threads.", "min_value": "At least 1 thread."},
    )
    measure_budget_s = forms.FloatField(
        min_value=0.1,
        max_value=120,
        required=False,
        label="Timing budget per measurement (s)",
        help_text="empty: 5 s per batch size (passes), 3 s per candidate (auto)",
    )
    max_accuracy_drop_pct = forms.FloatField(
        min_value=0,
        max_value=50,
        initial=1,
        required=False,
        label="Max accuracy drop (% relative)",
        help_text="accuracy on the model's data set, else top-1 agreement with the original",
    )
    latency_target_ms = forms.FloatField(
        min_value=0.001, required=False, label="Latency target p50 (ms)", help_text="optional"
    )
    batch_size = forms.IntegerField(min_value=1, max_value=4096, initial=32, required=False)
    time_budget_s = forms.FloatField(
        min_value=10, max_value=6 * 3600, initial=600, required=False, label="Search time budget (s)"
    )
    dataset = forms.TypedChoiceField(
        choices=[],
        coerce=int,
        empty_value=None,
        required=False,
        label="Labeled data set",
        help_text="trains distillation and fine-tuning, calibrates static int8, scores accuracy; "
        "empty: the model's own (the zoo's digits) or none",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        choices = model_choices()
        # "optimize again" names an exact version (perhaps not the newest): offer it; whether it
        # can run is validate_submission's call, as for the API.
        wanted = (self.data.get("model") if self.is_bound else self.initial.get("model")) or ""
        offered = {value for _, group in choices for value, _ in group}
        if isinstance(wanted, str) and wanted and wanted not in offered and len(wanted) <= 300:
            choices.append(("Requested", [(wanted, wanted)]))
        self.fields["model"].choices = choices
        self.fields["target"].choices = target_choices()
        self.fields["dataset"].choices = dataset_choices()
        # Position (0-based) -> message, shown beside that pass by optimize-form.js.
        self.pass_errors: dict[int, str] = {}

    def clean_passes(self) -> list[dict[str, Any]]:
        text = self.cleaned_data.get("passes") or "[]"
        try:
            passes = json.loads(text)
        except ValueError:
            raise forms.ValidationError("The pass list could not be read; reload the page.") from None
        if not isinstance(passes, list):
            raise forms.ValidationError("The pass list could not be read; reload the page.")
        return passes

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        node, _, device = (data.get("target") or ANY_NODE).partition("|")
        kind, params = self._params(data, device)
        try:
            _, _, data["params"], data["node"] = validate_submission(kind, data["model"], params, node)
            data["kind"] = kind
        except InvalidJob as exc:
            for field, message in exc.problems:
                if field == "passes":
                    self._place_pass_error(data, device, message)
                else:
                    self.add_error(FORM_FIELD_OF.get(field), message)
        return data

    def _params(self, data: dict, device: str) -> tuple[str, dict[str, Any]]:
        common: dict[str, Any] = {"device": device, "threads": data["threads"]}
        if data.get("measure_budget_s") is not None:
            common["measure_budget_s"] = data["measure_budget_s"]
        if data.get("dataset") is not None:
            common["dataset"] = data["dataset"]
        if data["mode"] == "auto":
            params = {**common}
            drop = data.get("max_accuracy_drop_pct")
            params["max_accuracy_drop"] = 0.01 if drop is None else drop / 100
            for key in ("latency_target_ms", "batch_size", "time_budget_s"):
                if data.get(key) is not None:
                    params[key] = data[key]
            return "auto_optimize", params
        return "optimize", {**common, "passes": data["passes"], "batch_sizes": data["batch_sizes"]}

    def _place_pass_error(self, data: dict, device: str, message: str) -> None:
        """The message beside the first pass that makes the pipeline fail (the engine's check names
        the pass, not its position); above the list when no one pass is to blame."""
        from dashboard.kinds.optimize import has_labeled_data
        from workers.passes import PASSES, InvalidPassParams, plan

        passes = data["passes"]
        has_data = has_labeled_data(data["model"], {"dataset": data.get("dataset")})
        for end in range(1, len(passes) + 1):
            try:
                plan(PASSES, passes[:end], device=device, has_labeled_data=has_data)
            except InvalidPassParams:
                self.pass_errors[end - 1] = message
                self.add_error(None, f"Pass {end}: {message}")
                return
        self.add_error("passes", message)

    @classmethod
    def initial_from_job(cls, job) -> dict:
        """The form filled in as an optimize or auto_optimize ``job`` was submitted ("Run again")."""
        params = job.params if isinstance(job.params, dict) else {}
        initial: dict[str, Any] = {
            "model": job.model_name,
            "target": f"{job.target_node}|{params.get('device', 'cpu')}",
            "mode": "auto" if job.kind == "auto_optimize" else "passes",
        }
        if isinstance(params.get("passes"), list):
            initial["passes"] = json.dumps(params["passes"])
        if isinstance(params.get("batch_sizes"), list):
            initial["batch_sizes"] = ", ".join(str(v) for v in params["batch_sizes"])
        if params.get("max_accuracy_drop") is not None:
            initial["max_accuracy_drop_pct"] = round(params["max_accuracy_drop"] * 100, 6)
        for key in (
            "threads",
            "measure_budget_s",
            "latency_target_ms",
            "batch_size",
            "time_budget_s",
            "dataset",
        ):
            if params.get(key) is not None:
                initial[key] = params[key]
        return initial


# Where a problem found by validate_submission is shown on the form.
FORM_FIELD_OF = {
    "model": "model",
    "node": "target",
    "device": "target",
    "batch_sizes": "batch_sizes",
    "threads": "threads",
    "measure_budget_s": "measure_budget_s",
    "max_accuracy_drop": "max_accuracy_drop_pct",
    "latency_target_ms": "latency_target_ms",
    "batch_size": "batch_size",
    "time_budget_s": "time_budget_s",
    "dataset": "dataset",
}


def dataset_choices() -> list[tuple[str, str]]:
    """Every uploaded data set, named with the model it fits (the job check refuses another model's)."""
    from dashboard.models import Dataset

    choices = [("", "the model's own (or none)")]
    for dataset in Dataset.objects.order_by("model_name", "-created_at", "-id")[:500]:
        choices.append((str(dataset.pk), f"{dataset.model_name}: {dataset.label}"))
    return choices


class DatasetUploadForm(forms.Form):
    """A labeled data set for a model: the .npz is checked by do_upload_dataset (400 with the reason)."""

    dataset_model = forms.ChoiceField(choices=[], label="For model")
    dataset_name = forms.CharField(max_length=200, label="Name", help_text="e.g. digits-2026-12")
    dataset_file = forms.FileField(
        label=".npz file", help_text="numpy.savez(path, x=inputs, y=integer labels); no pickle"
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["dataset_model"].choices = model_choices()
