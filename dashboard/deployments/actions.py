"""Writes on deployments: create one, promote a version, roll back. Every refusal is a
DeploymentRefused whose message names the field and the reason (the API answers 400 with it)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dashboard.kinds.base import InvalidJob
from dashboard.kinds.benchmark import Runtime
from dashboard.models import (
    Alert,
    Deployment,
    DeploymentChange,
    DeploymentChangeKind,
    Job,
    ModelVersion,
    ModelVersionStatus,
    Node,
    VerificationVerdict,
)
from dashboard.permissions import Role, require
from workers.bench.spec import MAX_BATCH_SIZE, MAX_THREADS
from workers.scrape import FORMATS as SCRAPE_FORMATS


class DeploymentRefused(ValueError):
    """A change that cannot be made; the message says why (the API answers 400 with it)."""


# A deployment's metric names ("deploy:<name>:e2e_p95_ms") must fit MetricSeries.metric (100).
MAX_NAME_CHARS = 80
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
MIN_PROBE_INTERVAL_S = 5
MAX_PROBE_INTERVAL_S = 86_400
MAX_OBJECTIVE_MS = 3_600_000.0


class DeploymentParams(BaseModel):
    """The serving config, with the benchmark spec's limits and enums (dashboard.kinds.benchmark)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    device: str = Field(default="cpu", pattern=r"^(cpu|cuda:\d{1,2})$")
    batch_size: Annotated[int, Field(ge=1, le=MAX_BATCH_SIZE)] = 1
    precision: Literal["fp32", "fp16", "bf16"] = "fp32"
    threads: int | None = Field(default=None, ge=1, le=MAX_THREADS)
    runtime: Runtime = "eager"


class ScrapeConfig(BaseModel):
    """Where a model server's Prometheus metrics are and how to read them (workers.scrape)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    url: str = Field(min_length=1, max_length=500)
    format: str
    model: str | None = Field(default=None, max_length=200)


@dataclass(frozen=True)
class DeploymentSpec:
    """A validated creation request."""

    name: str
    version: ModelVersion | None  # None: a zoo model whose original is registered on creation
    zoo_name: str | None
    node: str
    params: dict[str, Any]
    probe_interval_s: int
    objective_ms: float | None
    endpoint_url: str | None
    scrape: dict[str, Any] | None


def _refuse_params(exc: ValidationError, prefix: str) -> DeploymentRefused:
    from dashboard.jobspec import describe_problems

    field, message = describe_problems(exc)[0]
    where = f"{prefix}.{field}" if field else prefix
    return DeploymentRefused(f"{where}: {message}")


def _check_url(value: object, field: str) -> str:
    if not isinstance(value, str) or len(value) > 500:
        raise DeploymentRefused(f"{field}: an http(s) URL of at most 500 characters")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeploymentRefused(f"{field}: {value!r} is not an http(s) URL")
    return value


def resolve_version(model: object, field: str = "model") -> tuple[ModelVersion | None, str | None]:
    """(version, None) for "name@n" or a registered name (its newest ready version); (None, zoo
    name) for a zoo model not registered yet. Raises DeploymentRefused naming ``field``."""
    from dashboard.jobspec import resolve_registered
    from workers import zoo

    if not isinstance(model, str) or not model:
        raise DeploymentRefused(f"{field}: a zoo name or a registered model's name[@version]")
    if model in zoo.ZOO:
        original = ModelVersion.objects.filter(model__name=model, version=1).first()
        return (original, None) if original is not None else (None, model)
    try:
        label = resolve_registered(model)
    except InvalidJob as exc:
        raise DeploymentRefused(f"{field}: {exc}") from None
    name, _, number = label.rpartition("@")
    return ModelVersion.objects.select_related("model").get(model__name=name, version=int(number)), None


def check_text(value: object, field: str) -> None:
    """Refuse text the database cannot store: JSON lets a lone surrogate ("\\ud800") through."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise DeploymentRefused(f"{field}: not valid Unicode text (it holds a lone surrogate)") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(key, field)
            check_text(item, f"{field}.{key}" if isinstance(key, str) else field)
    elif isinstance(value, list):
        for item in value:
            check_text(item, field)


def validate_deployment(body: dict[str, Any]) -> DeploymentSpec:
    """Check a creation request field by field; DeploymentRefused names the first bad field."""
    from dashboard.jobspec import validate_target

    for field, value in body.items():
        check_text(value, field)

    name = body.get("name")
    if not isinstance(name, str) or not _NAME.match(name) or len(name) > MAX_NAME_CHARS:
        raise DeploymentRefused(
            f"name: lowercase letters, digits, - and _, at most {MAX_NAME_CHARS} characters, not {name!r}"
        )
    if Deployment.objects.filter(name=name).exists():
        raise DeploymentRefused(f"name: a deployment called {name!r} exists already")
    version, zoo_name = resolve_version(body.get("model"))

    raw_params = body.get("params") or {}
    if not isinstance(raw_params, dict):
        raise DeploymentRefused("params: a JSON object")
    try:
        params = DeploymentParams.model_validate(raw_params).model_dump(exclude_none=True)
    except ValidationError as exc:
        raise _refuse_params(exc, "params") from None

    interval = body.get("probe_interval_s", 60)
    if (
        not isinstance(interval, int)
        or isinstance(interval, bool)
        or not (interval == 0 or MIN_PROBE_INTERVAL_S <= interval <= MAX_PROBE_INTERVAL_S)
    ):
        raise DeploymentRefused(
            f"probe_interval_s: 0 (no probes) or a whole number of seconds from {MIN_PROBE_INTERVAL_S}"
            f" to {MAX_PROBE_INTERVAL_S}, not {interval!r}"
        )

    objective = body.get("objective_ms")
    if objective is not None:
        if (
            not isinstance(objective, int | float)
            or isinstance(objective, bool)
            or not 0 < objective <= MAX_OBJECTIVE_MS
        ):
            raise DeploymentRefused(f"objective_ms: a latency above 0 and at most {MAX_OBJECTIVE_MS:g} ms")
        objective = float(objective)

    endpoint = body.get("endpoint_url")
    endpoint = _check_url(endpoint, "endpoint_url") if endpoint is not None else None

    scrape = body.get("scrape")
    if scrape is not None:
        if not isinstance(scrape, dict):
            raise DeploymentRefused("scrape: a JSON object {url, format, model} or null")
        try:
            scrape = ScrapeConfig.model_validate(scrape).model_dump(exclude_none=True)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(p) for p in error["loc"])
            raise DeploymentRefused(f"scrape.{field}: {error['msg']}") from None
        _check_url(scrape["url"], "scrape.url")
        if scrape["format"] not in SCRAPE_FORMATS:
            raise DeploymentRefused(
                f"scrape.format: {scrape['format']!r} is unknown; one of {', '.join(SCRAPE_FORMATS)}"
            )

    node = body.get("node")
    if not isinstance(node, str) or not node or len(node) > 200:
        raise DeploymentRefused("node: the name of the node that serves it")
    if Node.objects.filter(name=node).exists():
        try:
            validate_target(node, params["device"])
        except InvalidJob as exc:
            raise DeploymentRefused(f"node: {exc}") from None
    elif interval:
        known = ", ".join(Node.objects.values_list("name", flat=True)) or "none yet"
        raise DeploymentRefused(
            f"node: unknown node {node!r}; probes run on a perfmon node (known: {known});"
            " set probe_interval_s 0 for a deployment that only ingests or is scraped"
        )
    elif params["device"] != "cpu":
        raise DeploymentRefused(f"node: {node!r} is not a perfmon node, so its GPUs are unknown")
    return DeploymentSpec(
        name=name,
        version=version,
        zoo_name=zoo_name,
        node=node,
        params=params,
        probe_interval_s=interval,
        objective_ms=objective,
        endpoint_url=endpoint,
        scrape=scrape,
    )


@dataclass
class _ZooRequest:
    """What registry_actions._zoo_original reads of a job: the zoo name and whose it is."""

    model_name: str
    owner: Any


def do_create_deployment(user, body: dict[str, Any]) -> Deployment:
    """Create a deployment from an API body (see DeploymentSpec); records a "create" change.

    A node that runs no perfmon sampler (a deployment that only ingests or is scraped) gets a Node
    row here, so its latency history has a node to belong to; it shows as offline."""
    require(user, Role.OPERATOR, "creating a deployment")
    spec = validate_deployment(body)
    version = spec.version
    if version is None:
        from dashboard.registry_actions import _zoo_original
        from workers import zoo

        zoo_name = spec.zoo_name or ""
        if not zoo.get(zoo_name).weights_ready(settings.DATA_DIR / "zoo"):
            # Training takes seconds on a quiet machine, minutes on a loaded one: never in a
            # request. Any job of the model trains it in a worker and caches the weights here.
            raise DeploymentRefused(
                f"model: {zoo_name} is not trained on this server yet, and training (seconds to minutes of CPU)"
                " is no work for a web request: run a"
                f" benchmark or optimization of {zoo_name} once (its job trains it), or upload a version;"
                " then create the deployment again"
            )
        version = _zoo_original(_ZooRequest(model_name=zoo_name, owner=user))
    Node.objects.get_or_create(
        name=spec.node, defaults={"gpu_status": "no perfmon sampler: deployment latency only"}
    )
    try:
        with transaction.atomic():
            deployment = Deployment.objects.create(
                name=spec.name,
                active_version=version,
                node_name=spec.node,
                params=spec.params,
                probe_interval_s=spec.probe_interval_s,
                objective_ms=spec.objective_ms,
                endpoint_url=spec.endpoint_url,
                scrape=spec.scrape,
                created_by=user,
            )
            DeploymentChange.objects.create(
                deployment=deployment, kind=DeploymentChangeKind.CREATE, to_version=version, by=user
            )
    except IntegrityError:
        raise DeploymentRefused(f"name: a deployment called {spec.name!r} exists already") from None
    return deployment


def promotable_version(deployment: Deployment, text: object) -> ModelVersion:
    """The version "name@n" names, if it may become ``deployment``'s active version."""
    check_text(text, "version")
    if not isinstance(text, str) or "@" not in text:
        example = f"{deployment.active_version.model.name}@2"
        raise DeploymentRefused(f"version: 'name@n', e.g. {example!r}, not {text!r}")
    name, _, number = text.rpartition("@")
    if not number.isascii() or not number.isdigit() or len(number) > 9:
        raise DeploymentRefused(f"version: {text!r}: the version after @ must be a number")
    version = (
        ModelVersion.objects.select_related("model").filter(model__name=name, version=int(number)).first()
    )
    if version is None:
        raise DeploymentRefused(f"version: unknown version {text!r}")
    active_model = deployment.active_version.model
    if version.model_id != active_model.pk:
        raise DeploymentRefused(
            f"version: {text} is a version of {name}, but {deployment.name} serves {active_model.name}"
        )
    if version.status != ModelVersionStatus.READY:
        reason = f": {version.status_reason}" if version.status_reason else ""
        raise DeploymentRefused(f"version: {text} is {version.status}{reason}, not ready")
    return version


def verify_window() -> timedelta:
    return timedelta(seconds=settings.DEPLOY_VERIFY_WINDOW_S)


def do_promote(
    user,
    deployment: Deployment,
    version: ModelVersion,
    *,
    kind: str = DeploymentChangeKind.PROMOTE,
    alert: Alert | None = None,
    job: Job | None = None,
) -> DeploymentChange:
    """Make ``version`` the deployment's active version and record the change, watched for the
    verification window (settings.DEPLOY_VERIFY_WINDOW_S) after which its verdict says whether
    latency really improved. ``user`` None means perfmon itself (an automatic promotion a rule
    allowed); a person needs the operator role."""
    if user is not None:
        require(user, Role.OPERATOR, "promoting a model version")
    with transaction.atomic():
        locked = Deployment.objects.select_for_update().get(pk=deployment.pk)
        if locked.active_version_id == version.pk:
            raise DeploymentRefused(f"{version} is already the active version of {locked.name}")
        now = timezone.now()
        change = DeploymentChange.objects.create(
            deployment=locked,
            kind=kind,
            from_version_id=locked.active_version_id,
            to_version=version,
            by=user,
            alert=alert,
            job=job,
            at=now,
            verify_until=now + verify_window(),
            verdict=VerificationVerdict.WATCHING,
        )
        locked.active_version = version
        locked.save(update_fields=["active_version"])
    deployment.active_version = version
    return change


def do_rollback(user, deployment: Deployment) -> DeploymentChange:
    """Return to the version that was active before the last change."""
    require(user, Role.OPERATOR, "rolling back a deployment")
    last = deployment.changes.exclude(from_version=None).first()
    if last is None or last.from_version is None:
        raise DeploymentRefused(f"{deployment.name} has no earlier version to roll back to")
    return do_promote(user, deployment, last.from_version, kind=DeploymentChangeKind.ROLLBACK)
