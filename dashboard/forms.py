from __future__ import annotations

from django import forms

from dashboard.jobspec import MAX_BATCH_SIZE, MAX_ITERATIONS, InvalidJob, validate_submission
from workers import zoo


class BenchmarkForm(forms.Form):
    model = forms.ChoiceField(choices=[])
    batch_size = forms.IntegerField(min_value=1, max_value=MAX_BATCH_SIZE, initial=32)
    iterations = forms.IntegerField(min_value=1, max_value=MAX_ITERATIONS, initial=200)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = [(name, name) for name in zoo.names()]

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        # The same rules as the API, so the two can never disagree.
        try:
            _, _, data["params"] = validate_submission(
                "benchmark",
                data["model"],
                {"batch_sizes": [data["batch_size"]], "iterations": data["iterations"]},
            )
        except InvalidJob as exc:
            raise forms.ValidationError(str(exc)) from None
        return data
