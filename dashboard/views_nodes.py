"""The node list and the node page. Both render what the database knows (Node.info, running
jobs); the browser then keeps them live from the node's samples over /ws/live."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from dashboard.models import Job, Node, natural_key, natural_order
from dashboard.models.jobs import JobStatus

# The issue: a node is offline after 3 missed ticks. The slack absorbs the heartbeat's own
# database write and clock skew between the node and the web server.


@dataclass(frozen=True)
class ChartSpec:
    """One detail chart of the node page. ``series`` are (metric, label) pairs named as the series
    API names them; the live feed reads the same field from the sample ("host.cpu_percent" is
    sample["host"]["cpu_percent"], "gpu.x" is each GPU's "x"). ``per_gpu`` charts get one dataset per
    GPU and series. ``unit`` is a key of static/js/units.js."""

    id: str
    title: str
    unit: str
    series: tuple[tuple[str, str], ...]
    per_gpu: bool = False

    @property
    def series_json(self) -> str:
        return json.dumps([{"metric": metric, "label": label} for metric, label in self.series])


GPU_CHARTS = (
    ChartSpec("gpu-util", "GPU utilization", "percent", (("gpu.utilization_gpu_percent", ""),), True),
    ChartSpec("gpu-memory", "GPU memory used", "bytes", (("gpu.memory_used_bytes", ""),), True),
    ChartSpec("gpu-temp", "GPU temperature", "celsius", (("gpu.temperature_c", ""),), True),
    ChartSpec("gpu-power", "GPU power draw", "watts", (("gpu.power_draw_w", ""),), True),
    ChartSpec(
        "gpu-clocks", "GPU clocks", "mhz", (("gpu.sm_clock_mhz", "SM"), ("gpu.mem_clock_mhz", "memory")), True
    ),
    ChartSpec(
        "gpu-pcie",
        "PCIe throughput",
        "bytes_per_s",
        (("gpu.pcie_tx_bytes_per_s", "tx"), ("gpu.pcie_rx_bytes_per_s", "rx")),
        True,
    ),
)
HOST_CHARTS = (
    ChartSpec("host-cpu", "Host CPU", "percent", (("host.cpu_percent", "CPU"),)),
    ChartSpec("host-memory", "Host memory", "percent", (("host.memory_percent", "memory"),)),
    ChartSpec(
        "host-disk",
        "Disk I/O",
        "bytes_per_s",
        (("host.disk_read_bytes_per_s", "read"), ("host.disk_write_bytes_per_s", "write")),
    ),
    ChartSpec(
        "host-network",
        "Network",
        "bytes_per_s",
        (("host.net_rx_bytes_per_s", "rx"), ("host.net_tx_bytes_per_s", "tx")),
    ),
)


def is_online(node: Node, now: datetime | None = None) -> bool:
    age_s = ((now or timezone.now()) - node.last_seen).total_seconds()
    return age_s <= node.offline_after_s


def gpu_summary(info: dict[str, Any]) -> list[dict[str, Any]]:
    """GPU models and how many of each, in first-seen order: [{"name", "count"}]."""
    counts: dict[str, int] = {}
    for gpu in info.get("gpus") or []:
        name = gpu.get("name") or "unknown GPU"
        counts[name] = counts.get(name, 0) + 1
    return [{"name": name, "count": count} for name, count in counts.items()]


def _gib(size_bytes: int | None) -> str | None:
    # GiB, as the page's live numbers show memory (Django's filesizeformat says "GB" for GiB).
    return None if not size_bytes else f"{size_bytes / 2**30:.1f} GiB"


def _row(node: Node, now: datetime) -> dict[str, Any]:
    info = node.info or {}
    return {
        "node": node,
        "online": is_online(node, now),
        "gpu_count": len(info.get("gpus") or []),
        "gpu_models": gpu_summary(info),
        "cpu_model": info.get("cpu_model"),
        "cpu_count": info.get("cpu_count"),
        "last_seen_age_s": max(0.0, (now - node.last_seen).total_seconds()),
    }


@login_required
def node_list(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    rows = [_row(node, now) for node in natural_order(Node.objects.all())]
    context = {"rows": rows, "sample_interval_s": settings.SAMPLE_INTERVAL_S}
    return render(request, "dashboard/nodes.html", context)


@login_required
def node_detail(request: HttpRequest, name: str) -> HttpResponse:
    node = Node.objects.filter(name=name).first()
    if node is None:
        context = {
            "missing_name": name,
            "known": sorted(Node.objects.values_list("name", flat=True), key=natural_key)[:20],
        }
        return render(request, "dashboard/node.html", context, status=404)
    info = node.info or {}
    # The page marks the process measuring each running job by the host PID the job recorded.
    running_jobs = [
        {"id": job.pk, "model": job.model_name, "pid": job.worker_pid}
        for job in Job.objects.filter(node_name=node.name, status=JobStatus.RUNNING).order_by("id")
    ]
    context = {
        "node": node,
        "row": _row(node, timezone.now()),
        "info": info,
        "gpus": info.get("gpus") or [],
        "memory_total": _gib(info.get("memory_total_bytes")),
        "gpu_status": node.gpu_status or info.get("gpu_status") or "unknown",
        "charts": (GPU_CHARTS if info.get("gpus") else ()) + HOST_CHARTS,
        "page_config": {
            "node": node.name,
            "sampleIntervalS": settings.SAMPLE_INTERVAL_S,
            "lastSeenAgeS": max(0.0, node.last_seen_age_s),
            "gpuIndexes": [gpu.get("index", i) for i, gpu in enumerate(info.get("gpus") or [])],
            "runningJobs": running_jobs,
            "seriesUrl": "/api/metrics/series",
            "jobUrl": reverse("dashboard:job", args=[0]),  # the page swaps in the id
        },
    }
    return render(request, "dashboard/node.html", context)
