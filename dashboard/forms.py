from __future__ import annotations

from django import forms

from dashboard.jobspec import MAX_BATCH_SIZE, MAX_ITERATIONS, InvalidJob, validate_submission
from dashboard.models import Node
from workers import zoo

ANY_NODE = "|cpu"


def target_choices() -> list[tuple[str, str]]:
    """ "node|device" choices: any node's CPU, then each node's CPU and GPUs."""
    choices = [(ANY_NODE, "Any node · CPU")]
    for node in Node.objects.all():
        choices.append((f"{node.name}|cpu", f"{node.name} · CPU"))
        for gpu in node.info.get("gpus", []):
            label = f"{node.name} · GPU {gpu.get('index')} ({gpu.get('name', 'GPU')})"
            choices.append((f"{node.name}|cuda:{gpu.get('index')}", label))
    return choices


class BenchmarkForm(forms.Form):
    model = forms.ChoiceField(choices=[])
    target = forms.ChoiceField(choices=[], initial=ANY_NODE, label="Run on", required=False)
    batch_size = forms.IntegerField(min_value=1, max_value=MAX_BATCH_SIZE, initial=32)
    iterations = forms.IntegerField(min_value=1, max_value=MAX_ITERATIONS, initial=200)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = [(name, name) for name in zoo.names()]
        self.fields["target"].choices = target_choices()

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        node, _, device = (data.get("target") or ANY_NODE).partition("|")
        params = {"batch_sizes": [data["batch_size"]], "iterations": data["iterations"], "device": device}
        # The same rules as the API, so the two can never disagree.
        try:
            _, _, data["params"], data["node"] = validate_submission("benchmark", data["model"], params, node)
        except InvalidJob as exc:
            raise forms.ValidationError(str(exc)) from None
        return data
