"""The optimization form page; the job page shows the result through the kind's result template."""

from __future__ import annotations

from urllib.parse import quote

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from dashboard.actions import do_submit_job
from dashboard.dataset_actions import DatasetRefused, do_upload_dataset
from dashboard.forms_optimize import DatasetUploadForm, OptimizeForm
from dashboard.models import Job
from workers.passes import catalogue

OPTIMIZE_KINDS = ("optimize", "auto_optimize")


@login_required
def optimize(request: HttpRequest) -> HttpResponse:
    """``?from=<job id>`` fills the form in as that optimization was submitted ("Run again");
    ``?model=<name[@N]>`` picks the model ("optimize again" from a job's result)."""
    if request.method == "POST":
        form = OptimizeForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            job = do_submit_job(request.user, data["kind"], data["model"], data["params"], data["node"])
            return redirect("dashboard:job", job_id=job.pk)
        return render(request, "dashboard/optimize.html", _context(form), status=400)
    source = request.GET.get("from", "")
    again = Job.objects.filter(pk=int(source), kind__in=OPTIMIZE_KINDS).first() if source.isdigit() else None
    initial = OptimizeForm.initial_from_job(again) if again else {}
    if not again and request.GET.get("model"):
        initial["model"] = request.GET["model"]
    if not again and request.GET.get("dataset", "").isdigit():
        initial["dataset"] = request.GET["dataset"]
    return render(request, "dashboard/optimize.html", _context(OptimizeForm(initial=initial), again))


@login_required
@require_POST
def upload_dataset(request: HttpRequest) -> HttpResponse:
    """The data set form on the optimize page: kept -> back to the form with it chosen; refused ->
    the page again with the reason beside the file (400)."""
    upload = DatasetUploadForm(request.POST, request.FILES)
    if upload.is_valid():
        data = upload.cleaned_data
        try:
            dataset = do_upload_dataset(
                request.user,
                name=data["dataset_name"],
                model=data["dataset_model"],
                chunks=data["dataset_file"].chunks(),
            )
        except DatasetRefused as exc:
            upload.add_error("dataset_file", str(exc))
        else:
            return redirect(
                f"{reverse('dashboard:optimize')}?model={quote(data['dataset_model'])}&dataset={dataset.pk}"
            )
    form = OptimizeForm(initial={"model": request.POST.get("dataset_model", "")})
    return render(request, "dashboard/optimize.html", _context(form, upload=upload), status=400)


def _context(
    form: OptimizeForm, again: Job | None = None, *, upload: DatasetUploadForm | None = None
) -> dict:
    return {
        "form": form,
        "again": again,
        "upload": upload or DatasetUploadForm(initial={"dataset_model": form.initial.get("model", "")}),
        "catalogue": catalogue(),
        "pass_errors": {str(index): message for index, message in form.pass_errors.items()},
    }
