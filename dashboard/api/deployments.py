"""/api/deployments (create, list, detail, promote, rollback) and /api/ingest/latency.

A deployment is a registered model version served on a node with a serving config; its latency
reaches the history from probes, ingest and scrapes as the node's series
``deploy:<name>:<stat>_ms`` (read them with /api/metrics/series)."""

from __future__ import annotations

from typing import Any

from ninja import Router, Schema, Status

from dashboard.api.auth import BearerToken
from dashboard.api.errors import READ_ERRORS, WRITE_ERRORS, Error
from dashboard.deployments import stats as latency_stats
from dashboard.deployments.actions import (
    DeploymentRefused,
    do_create_deployment,
    do_promote,
    do_rollback,
    promotable_version,
)
from dashboard.deployments.ingest import IngestRefused, do_ingest_latency
from dashboard.deployments.series import latency_metric
from dashboard.models import Deployment, DeploymentChange, ModelVersion

router = Router(tags=["deployments"])
ingest_router = Router(tags=["deployments"])


class ParamsIn(Schema):
    device: str = "cpu"
    batch_size: int = 1
    precision: str = "fp32"
    threads: int | None = None
    runtime: str = "eager"


class ScrapeIn(Schema):
    url: str
    format: str  # triton, torchserve, vllm, ray_serve, bentoml, kserve or histogram (any of those)
    model: str | None = None


class DeploymentIn(Schema):
    name: str
    model: str  # a zoo name, a registered name (its newest ready version) or "name@n"
    node: str
    params: dict[str, Any] = {}
    probe_interval_s: int = 60
    objective_ms: float | None = None
    endpoint_url: str | None = None
    scrape: ScrapeIn | None = None


class VersionOut(Schema):
    id: int
    label: str  # "name@n"
    model: str
    version: int
    status: str
    produced_by: str
    parent: str | None


class ChangeOut(Schema):
    id: int
    kind: str
    from_version: str | None
    to_version: str | None
    by: str | None
    alert_id: int | None
    job_id: int | None
    at: str
    verify_until: str | None
    verdict: str
    verdict_detail: dict[str, Any] | None


class DeploymentOut(Schema):
    name: str
    model: str
    active_version: VersionOut
    node: str
    params: dict[str, Any]
    probe_interval_s: int
    objective_ms: float | None
    endpoint_url: str | None
    scrape: dict[str, Any] | None
    last_probe_at: str | None
    last_scrape_at: str | None
    probe_state: dict[str, Any] | None
    scrape_state: dict[str, Any] | None
    metrics: dict[str, str]  # stat -> history metric name of the node
    created_at: str


class DeploymentDetailOut(DeploymentOut):
    lineage: list[VersionOut]  # the active version, its parent, ... back to the original
    changes: list[ChangeOut]
    latency: dict[str, dict[str, float]]  # stat -> count, mean/p50/p95/p99/last ms over the last hour


class PromoteIn(Schema):
    version: str  # "name@n"


class SampleIn(Schema):
    ts: float | str  # epoch seconds or ISO 8601 (UTC when it has no offset)
    latency_ms: float


class IngestIn(Schema):
    deployment: str
    samples: list[SampleIn]


class IngestOut(Schema):
    stored: int


def _label(version: ModelVersion | None) -> str | None:
    return None if version is None else f"{version.model.name}@{version.version}"


def version_json(version: ModelVersion) -> dict[str, Any]:
    return {
        "id": version.pk,
        "label": _label(version),
        "model": version.model.name,
        "version": version.version,
        "status": version.status,
        "produced_by": version.produced_by,
        "parent": _label(version.parent) if version.parent_id else None,
    }


def lineage(version: ModelVersion, limit: int = 50) -> list[ModelVersion]:
    chain, seen = [], set()
    current: ModelVersion | None = version
    while current is not None and current.pk not in seen and len(chain) < limit:
        chain.append(current)
        seen.add(current.pk)
        current = (
            ModelVersion.objects.select_related("model").filter(pk=current.parent_id).first()
            if current.parent_id
            else None
        )
    return chain


def change_json(change: DeploymentChange) -> dict[str, Any]:
    return {
        "id": change.pk,
        "kind": change.kind,
        "from_version": _label(change.from_version),
        "to_version": _label(change.to_version),
        "by": change.by.get_username() if change.by_id else None,
        "alert_id": change.alert_id,
        "job_id": change.job_id,
        "at": change.at.isoformat(),
        "verify_until": change.verify_until.isoformat() if change.verify_until else None,
        "verdict": change.verdict,
        "verdict_detail": change.verdict_detail,
    }


def deployment_json(deployment: Deployment, *, detail: bool = False) -> dict[str, Any]:
    from dashboard.deployments.series import STATS

    version = deployment.active_version
    data = {
        "name": deployment.name,
        "model": version.model.name,
        "active_version": version_json(version),
        "node": deployment.node_name,
        "params": deployment.params,
        "probe_interval_s": deployment.probe_interval_s,
        "objective_ms": deployment.objective_ms,
        "endpoint_url": deployment.endpoint_url,
        "scrape": deployment.scrape,
        "last_probe_at": deployment.last_probe_at.isoformat() if deployment.last_probe_at else None,
        "last_scrape_at": deployment.last_scrape_at.isoformat() if deployment.last_scrape_at else None,
        "probe_state": deployment.probe_state,
        "scrape_state": _public_scrape_state(deployment.scrape_state),
        "metrics": {stat: latency_metric(deployment.name, stat) for stat in STATS},
        "created_at": deployment.created_at.isoformat(),
    }
    if detail:
        data["lineage"] = [version_json(v) for v in lineage(version)]
        changes = deployment.changes.select_related("from_version__model", "to_version__model", "by")
        data["changes"] = [change_json(c) for c in changes[:100]]
        data["latency"] = latency_stats.recent(deployment)
    return data


def _public_scrape_state(state: dict[str, Any] | None) -> dict[str, Any] | None:
    # The raw counters are perfmon's bookkeeping, not something a user reads.
    return None if state is None else {k: v for k, v in state.items() if k != "counters"}


def _find(name: str) -> Deployment | None:
    return Deployment.objects.select_related("active_version__model").filter(name=name).first()


@router.post("", response={201: DeploymentOut, **WRITE_ERRORS})
def create_deployment(request, payload: DeploymentIn):
    """Create a deployment: ``model`` is a zoo name (its original is registered as version 1), a
    registered model's name (its newest ready version) or "name@n". ``params`` has the benchmark's
    limits (device, batch_size, precision, threads, runtime). A ``node`` that runs no perfmon
    sampler is allowed only with ``probe_interval_s`` 0 (probes run on perfmon nodes)."""
    try:
        deployment = do_create_deployment(request.user, payload.dict())
    except DeploymentRefused as exc:
        return Status(400, {"error": str(exc)})
    return Status(201, deployment_json(_find(deployment.name)))


@router.get("", response={200: list[DeploymentOut], **READ_ERRORS})
def list_deployments(request):
    """Every deployment, by name."""
    return [deployment_json(d) for d in Deployment.objects.select_related("active_version__model")]


@router.get("/{name}", response={200: DeploymentDetailOut, 401: Error, 404: Error})
def get_deployment(request, name: str):
    """One deployment: its active version with its lineage, its changes (with the verdict of
    each promotion's verification window) and its latency statistics over the last hour."""
    deployment = _find(name)
    if deployment is None:
        return Status(404, {"error": f"no deployment called {name!r}"})
    return deployment_json(deployment, detail=True)


@router.post("/{name}/promote", response={200: ChangeOut, **WRITE_ERRORS, 404: Error})
def promote(request, name: str, payload: PromoteIn):
    """Make ``version`` ("name@n", a ready version of the same model) the active version; the
    deployment is then watched for the verification window."""
    deployment = _find(name)
    if deployment is None:
        return Status(404, {"error": f"no deployment called {name!r}"})
    try:
        change = do_promote(request.user, deployment, promotable_version(deployment, payload.version))
    except DeploymentRefused as exc:
        return Status(400, {"error": str(exc)})
    return change_json(change)


@router.post("/{name}/rollback", response={200: ChangeOut, **WRITE_ERRORS, 404: Error})
def rollback(request, name: str):
    """Return to the version that was active before the last change."""
    deployment = _find(name)
    if deployment is None:
        return Status(404, {"error": f"no deployment called {name!r}"})
    try:
        change = do_rollback(request.user, deployment)
    except DeploymentRefused as exc:
        return Status(400, {"error": str(exc)})
    return change_json(change)


@ingest_router.post("/latency", auth=[BearerToken()], response={202: IngestOut, **WRITE_ERRORS, 503: Error})
def ingest_latency(request, payload: IngestIn):
    """Latency samples from your own service (token auth: an operator's token, or the agent token
    of the deployment's node). At most 10,000 samples; NaN, infinite or negative latencies and
    timestamps more than a day old or in the future refuse the whole request (400 naming the
    first bad sample), and nothing of it is stored. 202: stored, with their count."""
    try:
        stored = do_ingest_latency(
            request.user, getattr(request, "perfmon_token", None), payload.deployment, payload.samples
        )
    except IngestRefused as exc:
        return Status(400, {"error": str(exc)})
    return Status(202, {"stored": stored})
