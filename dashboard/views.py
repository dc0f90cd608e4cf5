"""HTML pages (all behind login) and the unauthenticated health check."""

from __future__ import annotations

import contextlib
import re
import time

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from dashboard.actions import JobAlreadyFinished, do_cancel_job, do_submit_job
from dashboard.forms import BenchmarkForm
from dashboard.models import Job, Node, natural_order
from dashboard.views_jobs import job_header, jobs_list_page


@login_required
def home(request: HttpRequest) -> HttpResponse:
    node = Node.objects.filter(name=settings.NODE_NAME).first() or Node.objects.order_by("-last_seen").first()
    context = {
        "node": node,
        "nodes": natural_order(Node.objects.all()),
        "form": BenchmarkForm(),
        "recent_jobs": Job.objects.prefetch_related("regressions")[:10],
    }
    return render(request, "dashboard/home.html", context)


@login_required
def benchmark(request: HttpRequest) -> HttpResponse:
    """The benchmark form; ``?from=<job id>`` fills it in as that job was submitted ("Run again")."""
    if request.method == "POST":
        form = BenchmarkForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            job = do_submit_job(request.user, "benchmark", data["model"], data["params"], data["node"])
            return redirect("dashboard:job", job_id=job.pk)
        return render(request, "dashboard/benchmark.html", {"form": form}, status=400)
    source = request.GET.get("from", "")
    # ASCII digits of a database-sized id only: "²".isdigit() is true and int() refuses it.
    again = Job.objects.filter(pk=int(source)).first() if re.fullmatch(r"[0-9]{1,18}", source) else None
    if again is not None:
        initial = BenchmarkForm.initial_from_job(again)
    else:  # "Benchmark this" on a model page: ?model=name@version
        initial = {"model": request.GET["model"]} if request.GET.get("model") else None
    form = BenchmarkForm(initial=initial)
    return render(request, "dashboard/benchmark.html", {"form": form, "again": again})


@login_required
def jobs(request: HttpRequest) -> HttpResponse:
    return jobs_list_page(request)


def _job_or_404_page(request: HttpRequest, job_id: int) -> Job | HttpResponse:
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        return render(request, "dashboard/job_404.html", {"job_id": job_id}, status=404)
    return job


@login_required
def job_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    job = _job_or_404_page(request, job_id)
    if isinstance(job, HttpResponse):
        return job
    context = {"job": job, "result_template": _result_template(job), **job_header(job)}
    return render(request, "dashboard/job.html", context)


@login_required
@require_POST
def cancel_job(request: HttpRequest, job_id: int) -> HttpResponse:
    job = _job_or_404_page(request, job_id)
    if isinstance(job, HttpResponse):
        return job
    with contextlib.suppress(JobAlreadyFinished):  # ended meanwhile: the page shows how
        do_cancel_job(job_id, request.user)
    return redirect("dashboard:job", job_id=job_id)


@login_required
def job_result_fragment(request: HttpRequest, job_id: int) -> HttpResponse:
    """The result part of the job page, fetched when the WebSocket says the job ended."""
    job = get_object_or_404(Job, pk=job_id)
    return render(request, _result_template(job), {"job": job, **job_header(job)})


def _result_template(job: Job) -> str:
    """The kind's own result partial; a kind this version no longer knows shows as a benchmark."""
    from dashboard import kinds

    spec = kinds.KINDS.get(job.kind)
    return spec.result_template if spec is not None else "dashboard/_job_result.html"


@never_cache
@require_GET
async def healthz(request: HttpRequest) -> JsonResponse:
    """State of the database, Redis, Celery workers and the sampler; 200 when all are fine, else 503."""
    # In the default thread pool, not thread-sensitive: a check that waits out a stalled Redis
    # must hold no thread that pages and job submissions need.
    body = await sync_to_async(_health, thread_sensitive=False)()
    return JsonResponse(body, status=200 if body["ok"] else 503)


def _health() -> dict:
    redis_check = _check_redis()
    checks = {
        "database": _check_database(),
        "redis": redis_check,
        # With Redis away the answer is known: skip a second wait on it so health answers in about a second.
        "workers": _check_workers() if redis_check["ok"] else {"ok": False, "error": "Redis unreachable"},
        "sampler": _check_sampler(),
    }
    return {"ok": all(check["ok"] for check in checks.values()), **checks}


def _timed(check):
    started = time.perf_counter()
    try:
        details = check()
    except Exception as exc:
        details = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    details["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return details


def _check_database() -> dict:
    def check():
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True, "vendor": connection.vendor}

    return _timed(check)


def _check_redis() -> dict:
    import redis

    def check():
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
        try:
            client.ping()
        finally:
            client.close()
        return {"ok": True}

    return _timed(check)


def _check_workers() -> dict:
    from dashboard.workers_seen import alive_workers

    def check():
        # Liveness each worker writes every couple of seconds, not a ping a busy worker answers late.
        names = sorted(alive_workers())
        return {"ok": bool(names), "count": len(names), "names": names}

    return _timed(check)


def _check_sampler() -> dict:
    def check():
        node = Node.objects.order_by("-last_seen").first()
        if node is None:
            return {"ok": False, "error": "no sampler has reported yet"}
        return {"ok": node.is_online, "node": node.name, "last_seen_age_s": round(node.last_seen_age_s, 1)}

    return _timed(check)
