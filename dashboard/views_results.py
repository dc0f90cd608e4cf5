"""Result pages and exports: JSON and CSV downloads of a job's result, and the comparison of jobs."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from dashboard.models import Job
from dashboard.results.compare import (
    MAX_JOBS,
    CompareError,
    compare_jobs,
    job_id,
    load_jobs,
    parse_ids,
    recent_comparable_jobs,
)
from dashboard.results.export import csv_filename, result_csv


def _no_result(job: Job) -> str:
    return f"job {job.pk} has no result ({job.status})"


@login_required
@require_GET
def job_result_json(request: HttpRequest, job_id: int) -> HttpResponse:
    """Job.result as stored, the same object as GET /api/jobs/<id> -> result; 404 before there is one."""
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        return JsonResponse({"error": f"job {job_id} not found"}, status=404)
    if job.result is None:
        return JsonResponse({"error": _no_result(job)}, status=404)
    response = JsonResponse(job.result, json_dumps_params={"indent": 1})
    response["Content-Disposition"] = f'attachment; filename="perfmon-job-{job.pk}.json"'
    return response


@login_required
@require_GET
def job_result_csv(request: HttpRequest, job_id: int) -> HttpResponse:
    """One row per run (dashboard.results.export.CSV_COLUMNS), as a download; 404 before there is a result."""
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        return HttpResponse(f"job {job_id} not found", status=404, content_type="text/plain; charset=utf-8")
    if job.result is None:
        return HttpResponse(_no_result(job), status=404, content_type="text/plain; charset=utf-8")
    response = HttpResponse(result_csv(job), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{csv_filename(job)}"'
    return response


def _checked_ids(request: HttpRequest) -> set[int]:
    # What the picker shows ticked: the ids asked for, even when the comparison was refused.
    checked = set()
    for value in request.GET.getlist("ids") + request.GET.getlist("pick"):
        for token in value.split(","):
            number = job_id(token)
            if number is not None:
                checked.add(number)
    return checked


@login_required
@require_GET
def compare(request: HttpRequest) -> HttpResponse:
    """/jobs/compare/?ids=3,5,9: 2 to 8 succeeded benchmarks side by side, the first as baseline.

    ``order=oldest-first`` (sent by the picker) sorts the ids so the oldest job is the baseline. Without
    ``ids`` it shows only the picker (``pick`` pre-ticks jobs); refused ids answer 400 with the reason."""
    context = {
        "recent_jobs": recent_comparable_jobs(),
        "checked_ids": _checked_ids(request),
        "max_jobs": MAX_JOBS,
        "comparison": None,
        "error": "",
    }
    if "ids" not in request.GET:
        return render(request, "dashboard/compare.html", context)
    try:
        ids = parse_ids(request.GET.getlist("ids"))
        if request.GET.get("order") == "oldest-first":  # the picker lists newest first
            ids.sort()
        jobs = load_jobs(ids)
    except CompareError as exc:
        context["error"] = str(exc)
        return render(request, "dashboard/compare.html", context, status=400)
    comparison = compare_jobs(jobs)
    context["comparison"] = comparison
    context["chart_data"] = comparison.chart_data()
    return render(request, "dashboard/compare.html", context)
