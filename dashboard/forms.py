from __future__ import annotations

from django import forms

from dashboard.jobspec import MAX_ITERATIONS, InvalidJob, validate_submission
from dashboard.models import Node, natural_order
from workers import zoo
from workers.bench.spec import RUNTIME_OPTIONS

RUNTIME_OPTION_NAMES = tuple(name for names in RUNTIME_OPTIONS.values() for name in names)

ANY_NODE = "|cpu"


def target_choices() -> list[tuple[str, str]]:
    """ "node|device" choices: any node's CPU, then each node's CPU and GPUs."""
    choices = [(ANY_NODE, "Any node · CPU")]
    for node in natural_order(Node.objects.all()):
        choices.append((f"{node.name}|cpu", f"{node.name} · CPU"))
        for gpu in node.info.get("gpus", []):
            label = f"{node.name} · GPU {gpu.get('index')} ({gpu.get('name', 'GPU')})"
            choices.append((f"{node.name}|cuda:{gpu.get('index')}", label))
    return choices


def model_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """The zoo, then each registered model's newest ready version, grouped."""
    from dashboard.models import ModelVersion, ModelVersionStatus

    registered = []
    seen = set()
    for version in (
        ModelVersion.objects.filter(status=ModelVersionStatus.READY)
        .select_related("model")
        .order_by("model__name", "-version")
    ):
        if version.model.name not in seen:
            seen.add(version.model.name)
            label = f"{version.model.name}@{version.version}"
            registered.append((label, f"{label} ({version.format})"))
    groups = [("Model zoo", [(name, name) for name in zoo.names()])]
    if registered:
        groups.append(("Registered models", registered))
    return groups


class IntegerListField(forms.CharField):
    """ "1, 8, 32" -> [1, 8, 32]; ranges are checked by the job spec."""

    def to_python(self, value):
        text = super().to_python(value)
        if not text:
            return []
        try:
            return [int(part) for part in text.replace(";", ",").split(",") if part.strip()]
        except ValueError:
            raise forms.ValidationError("Enter whole numbers separated by commas, e.g. 1, 8, 32.") from None


class BenchmarkForm(forms.Form):
    model = forms.ChoiceField(choices=[])
    target = forms.ChoiceField(choices=[], initial=ANY_NODE, label="Run on", required=False)
    batch_sizes = IntegerListField(initial="1, 8, 32", help_text="a sweep: comma-separated, 1 to 4096 each")
    iterations = forms.IntegerField(
        min_value=1,
        max_value=MAX_ITERATIONS,
        initial=200,
        label="Iterations (minimum)",
        error_messages={
            "max_value": "At most %(limit_value)s iterations.",
            "min_value": "At least %(limit_value)s iteration.",
        },
        help_text="timing goes on until the median is known within ±2% or the time budget ends",
    )
    precision = forms.ChoiceField(
        choices=[("fp32", "fp32"), ("bf16", "bf16"), ("fp16", "fp16")], initial="fp32"
    )
    threads = forms.IntegerField(
        min_value=1,
        max_value=512,
        required=False,
        label="CPU threads",
        help_text="empty: all cores",
        error_messages={"max_value": "At most %(limit_value)s threads.", "min_value": "At least 1 thread."},
    )
    time_budget_s = forms.FloatField(
        min_value=0.1,
        max_value=3600,
        initial=10,
        label="Time budget per batch size (s)",
        error_messages={
            "max_value": "At most %(limit_value)s s (one hour).",
            "min_value": "At least %(limit_value)s s.",
        },
    )
    concurrency = IntegerListField(
        required=False, label="Concurrency sweep", help_text="optional: client threads, e.g. 1, 2, 4, 8"
    )
    runtime = forms.ChoiceField(
        choices=[
            ("eager", "PyTorch eager"),
            ("torch_compile", "torch.compile (inductor)"),
            ("onnxruntime", "ONNX Runtime"),
        ],
        initial="eager",
        required=False,  # a form posted before runtimes existed means eager
        help_text="torch.compile's compile time is reported apart from the latencies; "
        "ONNX Runtime runs fp32 only, and an ONNX model always runs on it",
    )
    # Each runtime's options carry data-runtime, so static/js/benchmark-form.js shows only the chosen
    # runtime's; without JS all are shown, and the others' are ignored on submit.
    compile_mode = forms.ChoiceField(
        choices=[
            ("default", "default"),
            ("reduce-overhead", "reduce-overhead"),
            ("max-autotune", "max-autotune"),
        ],
        initial="default",
        required=False,
        label="torch.compile mode",
        widget=forms.Select(attrs={"data-runtime": "torch_compile"}),
    )
    ort_provider = forms.ChoiceField(
        choices=[("", "from the device"), ("cpu", "CPU"), ("cuda", "CUDA")],
        required=False,
        label="ONNX Runtime provider",
        widget=forms.Select(attrs={"data-runtime": "onnxruntime"}),
    )
    ort_graph_optimization = forms.ChoiceField(
        choices=[("all", "all"), ("extended", "extended"), ("basic", "basic"), ("disable", "disable")],
        initial="all",
        required=False,
        label="ONNX Runtime graph optimization",
        widget=forms.Select(attrs={"data-runtime": "onnxruntime"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = model_choices()
        self.fields["target"].choices = target_choices()

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        node, _, device = (data.get("target") or ANY_NODE).partition("|")
        params = {
            "batch_sizes": data["batch_sizes"],
            "iterations": data["iterations"],
            "device": device,
            "precision": data["precision"],
            "time_budget_s": data["time_budget_s"],
            "concurrency": data["concurrency"],
        }
        if data.get("threads"):
            params["threads"] = data["threads"]
        params["runtime"] = data.get("runtime") or "eager"
        # Only the chosen runtime's options: the others' selects keep a value but do not apply.
        for option in RUNTIME_OPTIONS.get(params["runtime"], ()):
            if data.get(option):
                params[option] = data[option]
        # The same rules as the API, so the two can never disagree.
        try:
            _, _, data["params"], data["node"] = validate_submission("benchmark", data["model"], params, node)
        except InvalidJob as exc:
            # Each problem beside the field it is about; what no field owns goes above the form.
            for field, message in exc.problems:
                self.add_error(FORM_FIELD_OF.get(field), message)
        return data

    @classmethod
    def initial_from_job(cls, job) -> dict:
        """The form filled in as ``job`` was submitted ("Run again")."""
        params = job.params if isinstance(job.params, dict) else {}

        def listed(key: str) -> str:
            values = params.get(key)
            return ", ".join(str(v) for v in values) if isinstance(values, list) else ""

        initial = {
            "model": job.model_name,
            "target": f"{job.target_node}|{params.get('device', 'cpu')}",
            "batch_sizes": listed("batch_sizes"),
            "concurrency": listed("concurrency"),
        }
        for key in ("iterations", "precision", "threads", "time_budget_s", "runtime", *RUNTIME_OPTION_NAMES):
            if params.get(key) is not None:
                initial[key] = params[key]
        return initial


# Where a problem found by validate_submission is shown on the form.
FORM_FIELD_OF = {
    "model": "model",
    "node": "target",
    "device": "target",
    "devices": "target",
    "batch_sizes": "batch_sizes",
    "iterations": "iterations",
    "precision": "precision",
    "threads": "threads",
    "time_budget_s": "time_budget_s",
    "concurrency": "concurrency",
    "runtime": "runtime",
    "compile_mode": "compile_mode",
    "ort_provider": "ort_provider",
    "ort_graph_optimization": "ort_graph_optimization",
}
