"""The model registry's pages: /models/ (list and upload form) and /models/<id>/ (versions, lineage,
the jobs that used each version, download, delete)."""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from dashboard.models import ModelFileFormat, ModelVersion, RegisteredModel
from dashboard.registry_actions import (
    ModelInUse,
    do_delete_model,
    do_delete_model_version,
    do_register_upload,
    jobs_using,
    parse_input_spec,
)
from workers import zoo
from workers.registry import Rejected

INPUT_SPEC_EXAMPLE = """{
  "shape": [null, 784],
  "dtype": "float32",
  "low": 0, "high": 1
}"""


class ModelUploadForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="a new name, or an existing one for its next version")
    file = forms.FileField(help_text=".pt2, .pt (TorchScript), .onnx or .safetensors")
    format = forms.ChoiceField(
        choices=[("", "detect from the content"), *ModelFileFormat.choices], required=False
    )
    architecture = forms.ChoiceField(
        choices=[("", "none (not a state dict)")] + [(n, n) for n in zoo.names()],
        required=False,
        help_text="required for a safetensors state dict",
    )
    input_spec = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 5, "cols": 60, "placeholder": INPUT_SPEC_EXAMPLE}),
        help_text="JSON; required where the file does not record its input (TorchScript, int64 inputs). "
        "shape starts with null, the batch; float32 values default to [0, 1) without low and high",
    )
    parent_version = forms.IntegerField(
        required=False, min_value=1, help_text="version id this one derives from"
    )
    description = forms.CharField(required=False, max_length=2000)


@login_required
def models_list(request: HttpRequest) -> HttpResponse:
    form = ModelUploadForm(request.POST or None, request.FILES or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        upload = data["file"]
        try:
            version = do_register_upload(
                request.user,
                name=data["name"],
                filename=upload.name or "",
                chunks=upload.chunks(),
                declared_format=data["format"] or None,
                architecture=data["architecture"] or None,
                input_spec=parse_input_spec(data["input_spec"]),
                parent_version_id=data["parent_version"],
                description=data["description"],
            )
        except Rejected as exc:
            error = str(exc)
        else:
            return redirect("dashboard:models-detail", model_id=version.model_id)
    status = 400 if request.method == "POST" else 200
    models = RegisteredModel.objects.prefetch_related("versions")
    context = {"form": form, "error": error, "models": models, "zoo": zoo.ZOO.values()}
    return render(request, "dashboard/models.html", context, status=status)


JOBS_PER_VERSION = 20


@login_required
def models_detail(request: HttpRequest, model_id: int, error: str = "", status: int = 200) -> HttpResponse:
    model = get_object_or_404(RegisteredModel, pk=model_id)
    versions = list(model.versions.select_related("model", "parent__model").order_by("-version"))
    for version in versions:
        version.recent_jobs = list(jobs_using(version)[:JOBS_PER_VERSION])
    context = {"model": model, "versions": versions, "error": error}
    return render(request, "dashboard/models_detail.html", context, status=status)


@login_required
@require_POST
def models_delete_version(request: HttpRequest, model_id: int, number: int) -> HttpResponse:
    version = get_object_or_404(
        ModelVersion.objects.select_related("model"), model_id=model_id, version=number
    )
    try:
        do_delete_model_version(request.user, version)
    except ModelInUse as exc:
        return models_detail(request, model_id, error=str(exc), status=409)
    return redirect("dashboard:models-detail", model_id=model_id)


@login_required
@require_POST
def models_delete(request: HttpRequest, model_id: int) -> HttpResponse:
    model = get_object_or_404(RegisteredModel, pk=model_id)
    try:
        do_delete_model(request.user, model)
    except ModelInUse as exc:
        return models_detail(request, model_id, error=str(exc), status=409)
    return redirect("dashboard:models")
