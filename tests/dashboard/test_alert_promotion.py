"""When an alert's action job ends: the alert shows the measured before/after; a rule that
auto-promotes promotes only when the constraints held (faster, accuracy within the limit, a new
version registered and validated, the deployment unchanged meanwhile); otherwise an operator
promotes in one click, and rolls back in one click."""

from __future__ import annotations

from dashboard.actions import do_finish_job
from dashboard.alerting.actions import NEEDS_ATTENTION
from dashboard.models import (
    DeploymentChange,
    DeploymentChangeKind,
    Job,
    JobStatus,
    ModelVersion,
    ModelVersionStatus,
)
from dashboard.registry_actions import do_finish_validation
from tests.dashboard import alert_world as world
from tests.dashboard.base import BaseTestCase


def optimize_result(
    version: ModelVersion | None, before_ms: float, after_ms: float, accuracy: float = 0.95
) -> dict:
    """What an optimize job at batch size 8 writes (the fields the alert reads)."""
    final = {
        "label": "quantize_dynamic",
        "latency_ms": {"8": {"p50": after_ms, "p99": after_ms * 1.3}},
        "accuracy": accuracy,
        "accuracy_original": 0.95,
    }
    result = {
        "kind": "optimize",
        "batch_sizes": [8],
        "before": {
            "label": "original",
            "latency_ms": {"8": {"p50": before_ms, "p99": before_ms * 1.3}},
            "accuracy": 0.95,
        },
        "after": [final],
        "final": final,
    }
    if version is not None:
        result["registered"] = {
            "model_id": version.model_id,
            "model": version.model.name,
            "version": version.version,
        }
    return result


class PromotionTestCase(BaseTestCase):
    def setUp(self):
        self.v1 = world.ready_version()
        self.deployment = world.deployment(self.v1, self.node)

    def run_action(self, auto_promote: bool = True, **rule_fields):
        with self.captureOnCommitCallbacks(execute=False):
            alert = world.fire(world.rule(auto_promote=auto_promote, **rule_fields), self.deployment)
        return alert, alert.jobs.get()

    def produced(self, job: Job, status: str = ModelVersionStatus.READY) -> ModelVersion:
        version = world.ready_version(number=2, parent=self.v1)
        # Same bytes as v1: a rejection then keeps the (fake) stored file, still used by v1.
        ModelVersion.objects.filter(pk=version.pk).update(
            status=status, produced_by_job=job, sha256=self.v1.sha256
        )
        version.refresh_from_db()
        return version

    def finish(self, job: Job, result: dict, status: str = JobStatus.SUCCEEDED, error: str = "") -> None:
        with self.captureOnCommitCallbacks(execute=True):
            do_finish_job(job.pk, status, result=result, error=error)

    def outcome(self, alert) -> dict:
        response = self.client.get(f"/api/alerts/{alert.pk}/actions", **self.bearer())
        self.assertEqual(response.status_code, 200, response.content)
        return next(row for row in response.json() if row["kind"] == "optimize")["outcome"]

    def active(self) -> ModelVersion:
        self.deployment.refresh_from_db()
        return self.deployment.active_version


class AutoPromoteTests(PromotionTestCase):
    def test_the_alert_shows_before_and_after_and_promotes_when_the_constraints_held(self):
        alert, job = self.run_action()
        v2 = self.produced(job)
        self.finish(job, optimize_result(v2, before_ms=62.0, after_ms=31.0, accuracy=0.948))

        outcome = self.outcome(alert)
        self.assertEqual((outcome["before"]["p50_ms"], outcome["after"]["p50_ms"]), (62.0, 31.0))
        self.assertEqual((outcome["before"]["score"], outcome["after"]["score"]), (0.95, 0.948))
        self.assertAlmostEqual(outcome["speedup"], 2.0)
        self.assertAlmostEqual(outcome["accuracy_drop"], 0.002 / 0.95)
        self.assertEqual(outcome["version"]["label"], "digits@2")
        self.assertEqual(outcome["reasons"], [])
        self.assertEqual(outcome["promotion"]["state"], "promoted")
        self.assertEqual(self.active(), v2)
        change = DeploymentChange.objects.get(kind=DeploymentChangeKind.AUTO_PROMOTE)
        self.assertEqual(
            (change.alert, change.job, change.by, change.from_version), (alert, job, None, self.v1)
        )

    def test_a_slower_result_is_not_promoted_and_says_why(self):
        alert, job = self.run_action()
        v2 = self.produced(job)
        self.finish(job, optimize_result(v2, before_ms=62.0, after_ms=70.0))
        outcome = self.outcome(alert)
        self.assertEqual(outcome["promotion"]["state"], "refused")
        self.assertIn("not faster than the original at batch size 8", outcome["promotion"]["detail"])
        self.assertEqual(self.active(), self.v1)

    def test_too_much_accuracy_lost_is_not_promoted(self):
        alert, job = self.run_action()
        v2 = self.produced(job)
        self.finish(job, optimize_result(v2, before_ms=62.0, after_ms=20.0, accuracy=0.90))
        outcome = self.outcome(alert)
        self.assertIn(
            "accuracy dropped 5.26% (relative), more than the 1.00% allowed", outcome["promotion"]["detail"]
        )
        self.assertEqual(self.active(), self.v1)

    def test_the_actions_own_accuracy_limit_applies(self):
        action = {**world.QUANTIZE, "max_accuracy_drop": 0.1}
        alert, job = self.run_action(actions=[action])
        v2 = self.produced(job)
        self.finish(job, optimize_result(v2, before_ms=62.0, after_ms=20.0, accuracy=0.90))
        self.assertEqual(self.outcome(alert)["promotion"]["state"], "promoted")
        self.assertEqual(self.active(), v2)

    def test_a_failed_job_is_shown_and_promotes_nothing(self):
        alert, job = self.run_action()
        self.finish(job, None, status=JobStatus.FAILED, error="no pass succeeded: quantize_dynamic: boom")
        outcome = self.outcome(alert)
        self.assertIn("the job failed: no pass succeeded", outcome["reasons"][0])
        self.assertEqual(outcome["promotion"]["state"], "refused")
        self.assertFalse(DeploymentChange.objects.exists())

    def test_it_waits_for_the_validation_then_promotes(self):
        alert, job = self.run_action()
        v2 = self.produced(job, status=ModelVersionStatus.VALIDATING)
        self.finish(job, optimize_result(v2, before_ms=62.0, after_ms=31.0))
        self.assertEqual(self.outcome(alert)["promotion"]["state"], "waiting")
        self.assertEqual(self.active(), self.v1)

        with self.captureOnCommitCallbacks(execute=True):
            do_finish_validation(v2.pk, ModelVersionStatus.READY)
        self.assertEqual(self.outcome(alert)["promotion"]["state"], "promoted")
        self.assertEqual(self.active(), v2)

    def test_a_rejected_version_is_never_promoted(self):
        alert, job = self.run_action()
        v2 = self.produced(job, status=ModelVersionStatus.VALIDATING)
        self.finish(job, optimize_result(v2, before_ms=62.0, after_ms=31.0))
        with self.captureOnCommitCallbacks(execute=True):
            do_finish_validation(v2.pk, ModelVersionStatus.REJECTED, reason="forward pass failed")
        self.assertIn("was rejected", self.outcome(alert)["promotion"]["detail"])
        self.assertEqual(self.active(), self.v1)

    def test_a_deployment_changed_meanwhile_is_left_alone(self):
        alert, job = self.run_action()
        v2 = self.produced(job)
        other = world.ready_version(number=3)
        type(self.deployment).objects.filter(pk=self.deployment.pk).update(active_version=other)
        self.finish(job, optimize_result(v2, before_ms=62.0, after_ms=31.0))
        self.assertIn("no longer runs the version", self.outcome(alert)["promotion"]["detail"])
        self.assertEqual(self.active(), other)


class OneClickTests(PromotionTestCase):
    def post(self, path: str):
        return self.client.post(path, **self.bearer())

    def test_an_operator_promotes_then_rolls_back_in_one_click_each(self):
        alert, job = self.run_action(auto_promote=False)
        v2 = self.produced(job)
        self.finish(job, optimize_result(v2, before_ms=62.0, after_ms=31.0))
        self.assertEqual(self.outcome(alert)["promotion"]["state"], "off")
        self.assertEqual(self.active(), self.v1)

        response = self.post(f"/api/alerts/{alert.pk}/promote")
        self.assertEqual(response.status_code, 200, response.content)
        body = response.json()
        self.assertEqual(
            (body["kind"], body["from_version"], body["to_version"], body["by"]),
            ("promote", "digits@1", "digits@2", "alice"),
        )
        self.assertEqual(self.active(), v2)

        response = self.post(f"/api/alerts/{alert.pk}/rollback")
        self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual(response.json()["to_version"], "digits@1")
        self.assertEqual(self.active(), self.v1)

        again = self.post(f"/api/alerts/{alert.pk}/rollback")
        self.assertEqual(again.status_code, 400)
        self.assertIn("last change was not a promotion made from alert", again.json()["error"])

    def test_nothing_to_promote_or_not_validated_yet_is_a_400_with_the_reason(self):
        alert, job = self.run_action(auto_promote=False)
        response = self.post(f"/api/alerts/{alert.pk}/promote")
        self.assertEqual(response.status_code, 400)
        self.assertIn("produced no model version", response.json()["error"])

        v2 = self.produced(job, status=ModelVersionStatus.VALIDATING)
        self.finish(job, optimize_result(v2, before_ms=62.0, after_ms=31.0))
        response = self.post(f"/api/alerts/{alert.pk}/promote")
        self.assertEqual(response.status_code, 400)
        self.assertIn("digits v2 is validating", response.json()["error"])
        self.assertEqual(self.active(), self.v1)


class NeedsAttentionTests(PromotionTestCase):
    def test_the_last_attempt_failing_while_still_firing_tells_a_person(self):
        alert, job = self.run_action(max_attempts=1)
        self.finish(job, None, status=JobStatus.FAILED, error="worker lost")
        (event,) = alert.events.filter(to_state=NEEDS_ATTENTION)
        self.assertIn(f"job #{job.pk}) was not promoted", event.reason)

    def test_attempts_left_or_a_promotion_tell_no_one(self):
        alert, job = self.run_action(max_attempts=2)
        self.finish(job, None, status=JobStatus.FAILED, error="worker lost")
        self.assertFalse(alert.events.filter(to_state=NEEDS_ATTENTION).exists())

        alert, job = self.run_action(max_attempts=1, name="second rule")
        v2 = self.produced(job)
        self.finish(job, optimize_result(v2, before_ms=62.0, after_ms=31.0))
        self.assertFalse(alert.events.filter(to_state=NEEDS_ATTENTION).exists())
