"""The optimization form page; the job page shows the result through the kind's result template."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from dashboard.actions import do_submit_job
from dashboard.forms_optimize import OptimizeForm
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
    return render(request, "dashboard/optimize.html", _context(OptimizeForm(initial=initial), again))


def _context(form: OptimizeForm, again: Job | None = None) -> dict:
    return {
        "form": form,
        "again": again,
        "catalogue": catalogue(),
        "pass_errors": {str(index): message for index, message in form.pass_errors.items()},
    }
