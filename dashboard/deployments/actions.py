"""Writes on deployments: promote a version, roll back. (Creation, probes, ingest and scrapes are
added beside these by the deployments work.)"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from dashboard.models import Alert, Deployment, DeploymentChange, DeploymentChangeKind, Job, ModelVersion
from dashboard.permissions import Role, require


class DeploymentRefused(ValueError):
    """A change that cannot be made; the message says why (the API answers 400 with it)."""


def do_promote(
    user,
    deployment: Deployment,
    version: ModelVersion,
    *,
    kind: str = DeploymentChangeKind.PROMOTE,
    alert: Alert | None = None,
    job: Job | None = None,
) -> DeploymentChange:
    """Make ``version`` the deployment's active version and record the change. ``user`` None means
    perfmon itself (an automatic promotion a rule allowed); a person needs the operator role."""
    if user is not None:
        require(user, Role.OPERATOR, "promoting a model version")
    with transaction.atomic():
        locked = Deployment.objects.select_for_update().get(pk=deployment.pk)
        if locked.active_version_id == version.pk:
            raise DeploymentRefused(f"{version} is already the active version of {locked.name}")
        change = DeploymentChange.objects.create(
            deployment=locked,
            kind=kind,
            from_version_id=locked.active_version_id,
            to_version=version,
            by=user,
            alert=alert,
            job=job,
            at=timezone.now(),
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
