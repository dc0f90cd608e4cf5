"""The article's loop with a real Celery worker: a latency rule on a deployment enters firing ->
"quantize, then prune" runs on the deployment's node for its active version -> the alert shows the
measured before/after -> the produced version is validated and, the rule allowing it and the
constraints holding, promoted -> rollback restores the original."""

from __future__ import annotations

import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.contrib.auth import get_user_model
from django.test import override_settings

from dashboard.alerting.actions import do_rollback_from_alert
from dashboard.models import (
    AlertActionStatus,
    DeploymentChange,
    DeploymentChangeKind,
    Job,
    JobStatus,
    ModelVersion,
    ModelVersionStatus,
    Node,
)
from dashboard.permissions import Role, grant
from dashboard.registry_actions import do_register_file
from perfmon.celery import app
from tests.dashboard import alert_world as world
from workers import zoo

pytestmark = pytest.mark.django_db(transaction=True)
NODE = "serve-1"


@pytest.fixture
def operator(tmp_path):
    user = get_user_model().objects.create_user("olga", password="pw-olga-12345")
    grant(user, Role.OPERATOR)
    with override_settings(DATA_DIR=tmp_path):
        yield user


@pytest.fixture
def worker():
    app.control.purge()
    queues = ["jobs", f"node.{NODE}.cpu"]  # the deployment's node, and validations
    with start_worker(app, pool="solo", queues=queues, perform_ping_check=False, shutdown_timeout=60) as w:
        yield w


def until(check, what: str, timeout_s: float = 600):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"gave up waiting for {what}")


def registered_original(user, tmp_path) -> ModelVersion:
    """SimpleModel's trained weights as version 1 of a registered model, validated by the worker."""
    from safetensors.torch import save_file

    entry = zoo.get("SimpleModel")
    model = entry.build(tmp_path / "zoo")
    weights = tmp_path / "SimpleModel.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    version = do_register_file(
        user,
        weights,
        name="SimpleModel",
        produced_by="zoo original",
        declared_format="safetensors",
        architecture="SimpleModel",
        input_spec=entry.input_spec,
    )
    return until(
        lambda: ModelVersion.objects.filter(pk=version.pk, status=ModelVersionStatus.READY).first(),
        "version 1 to be validated",
    )


def test_a_firing_latency_rule_optimizes_the_deployment_and_promotes_the_result(operator, worker, tmp_path):
    node = Node.objects.create(name=NODE, gpu_status="no GPU", info={"cpu_count": 2})
    v1 = registered_original(operator, tmp_path)
    deployment = world.deployment(v1, node, batch_size=32)
    quantize_then_prune = {
        "kind": "optimize",
        "passes": [
            {"name": "quantize_dynamic"},
            {"name": "prune_l1_unstructured", "params": {"amount": 0.2}},
        ],
        "measure_budget_s": 0.5,
    }
    rule = world.rule([{"kind": "notify"}, quantize_then_prune], auto_promote=True)

    alert = world.fire(rule, deployment)

    job = until(
        lambda: Job.objects.filter(alert=alert, status__in=["succeeded", "failed"]).first(), "the job"
    )
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert (job.deployment, job.target_node, job.model_version) == (deployment, NODE, v1)
    assert job.owner is None, "perfmon itself ran it"

    row = alert.actions.get(kind="optimize")
    assert row.status == AlertActionStatus.SUBMITTED and row.job == job
    outcome = row.outcome
    assert outcome["batch_size"] == 32
    assert outcome["before"]["p50_ms"] > 0 and outcome["after"]["p50_ms"] > 0
    assert outcome["score_name"] == "accuracy" and 0 < outcome["after"]["score"] <= 1
    assert outcome["version"]["label"] == "SimpleModel@2"
    v2 = ModelVersion.objects.get(pk=outcome["version"]["id"])
    assert v2.parent == v1 and v2.produced_by_job == job

    # Registered as perfmon for the alert; validated by the worker; then the decision is final.
    until(lambda: ModelVersion.objects.get(pk=v2.pk).status != ModelVersionStatus.VALIDATING, "validation")
    row.refresh_from_db()
    promotion = row.outcome["promotion"]
    deployment.refresh_from_db()
    # Whether int8 is faster on this CPU is measured, not assumed: the decision follows the reasons.
    assert (promotion["state"] == "promoted") == (row.outcome["reasons"] == []), promotion
    if promotion["state"] == "promoted":
        assert deployment.active_version == v2
        change = DeploymentChange.objects.get(kind=DeploymentChangeKind.AUTO_PROMOTE)
        assert (change.alert, change.job) == (alert, job)
        do_rollback_from_alert(operator, alert)
        deployment.refresh_from_db()
    else:
        assert promotion["detail"].startswith("not promoted automatically: ")
    assert deployment.active_version == v1
