"""The jobs list page (filters, paging, headline figures, tick to compare) and what the job page's
header shows; views.py routes to these."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from dashboard.job_filters import BadQuery, filter_jobs
from dashboard.models import Job, JobKind, JobStatus, Node, natural_key
from dashboard.results.runs import number, runtime_of
from dashboard.results.summary import (
    ENV_LABELS,
    PARAM_LABELS,
    iterations_ran,
    labelled,
    threads_of,
)

JOBS_PER_PAGE = 50
RUNTIME_OPTION_KEYS = ("compile_mode", "ort_provider", "ort_graph_optimization")
FILTERS = ("kind", "status", "model", "node")


def jobs_list_page(request: HttpRequest) -> HttpResponse:
    chosen = {name: request.GET.get(name, "").strip() for name in FILTERS}
    error = ""
    try:
        jobs = filter_jobs(Job.objects.all(), **chosen)
    except BadQuery as exc:
        error, jobs = str(exc), Job.objects.none()
    paginator = Paginator(jobs.prefetch_related("regressions"), JOBS_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    # Links to other pages keep the filters.
    kept = request.GET.copy()
    kept.pop("page", None)
    context = {
        "jobs": page.object_list,
        "page": page,
        "filters": chosen,
        "filtered": any(chosen.values()),
        "query": kept.urlencode(),
        "error": error,
        "kinds": JobKind.choices,
        "statuses": JobStatus.values,
        "models": sorted(set(Job.objects.values_list("model_name", flat=True))),
        "nodes": sorted(
            set(Job.objects.exclude(node_name="").values_list("node_name", flat=True))
            | set(Node.objects.values_list("name", flat=True)),
            key=natural_key,
        ),
        # New jobs appear live only where they belong: the first page of the unfiltered list.
        "live_new_rows": page.number == 1 and not any(chosen.values()),
    }
    return render(request, "dashboard/jobs.html", context, status=400 if error else 200)


def job_header(job: Job) -> dict:
    """What the job page says about how the job ran: iterations actually timed, threads, and the
    parameters and environment under human labels."""
    result = job.result if isinstance(job.result, dict) else {}
    spec = result.get("spec") if isinstance(result.get("spec"), dict) else None
    # What was asked, overlaid with what the harness resolved (defaults filled in) once it ran;
    # the options of runtimes that did not run are left out rather than shown as "–".
    params = {**(job.params if isinstance(job.params, dict) else {}), **(spec or {})}
    params = {k: v for k, v in params.items() if not (k in RUNTIME_OPTION_KEYS and v is None)}
    return {
        "iterations_ran": iterations_ran(result),
        "threads": threads_of(job.params, result),
        "runtime": runtime_of(job.params, result),
        "compile_s": number(result.get("compile_s")),
        "param_rows": labelled(params, PARAM_LABELS),
        "env_rows": labelled(result.get("env") if isinstance(result.get("env"), dict) else {}, ENV_LABELS),
    }
