"""A firing rule's actions on a deployment: one optimize job for the active version, linked both
ways; the loop guards (one in flight, cooldown, attempts per episode, approval); a failing action
that does not stop the next; only entering firing acts."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

from django.contrib.auth import get_user_model
from django.utils import timezone

from dashboard.alerting import dispatch
from dashboard.alerting.actions import NEEDS_ATTENTION, InvalidAction, validate_actions
from dashboard.models import AlertActionStatus, AlertState, ApiToken, Job, JobStatus, Role
from tests.dashboard import alert_world as world
from tests.dashboard.base import BaseTestCase


class AlertActionsTestCase(BaseTestCase):
    def setUp(self):
        self.version = world.ready_version()
        self.deployment = world.deployment(self.version, self.node)

    def fire(self, rule, deployment="default"):
        with self.captureOnCommitCallbacks(execute=False):  # no broker: the job stays queued
            return world.fire(rule, self.deployment if deployment == "default" else deployment)

    def end(self, job: Job, ago_s: float, status: str = JobStatus.SUCCEEDED) -> None:
        Job.objects.filter(pk=job.pk).update(
            status=status, finished_at=timezone.now() - timedelta(seconds=ago_s)
        )


class EnteringFiringTests(AlertActionsTestCase):
    def test_it_enqueues_one_optimize_job_for_the_active_version_linked_both_ways(self):
        alert = self.fire(world.rule())

        job = Job.objects.get()
        self.assertEqual(list(alert.jobs.all()), [job])
        self.assertEqual(list(self.deployment.jobs.all()), [job])
        self.assertEqual(
            (job.kind, job.model_name, job.model_version), ("optimize", "digits@1", self.version)
        )
        self.assertEqual(job.target_node, self.node.name)
        self.assertEqual(job.queue, f"node.{self.node.name}.cpu")
        # The deployment's serving config: its batch size, device and threads.
        self.assertEqual(job.params["batch_sizes"], [8])
        self.assertEqual((job.params["device"], job.params["threads"]), ("cpu", 1))
        self.assertEqual(job.params["passes"][0]["name"], "quantize_dynamic")
        self.assertIsNone(job.owner, "perfmon itself submitted it")
        notify, optimize = alert.actions.order_by("position")
        self.assertEqual((notify.kind, notify.status), ("notify", AlertActionStatus.DONE))
        self.assertEqual((optimize.status, optimize.job), (AlertActionStatus.SUBMITTED, job))

    def test_it_waits_for_a_just_registered_version_then_starts_the_job_once_it_is_ready(self):
        from dashboard.models import ModelVersionStatus
        from dashboard.registry_actions import do_finish_validation

        type(self.version).objects.filter(pk=self.version.pk).update(status=ModelVersionStatus.VALIDATING)
        alert = self.fire(world.rule())

        optimize = alert.actions.get(kind="optimize")
        self.assertEqual(optimize.status, AlertActionStatus.BLOCKED)
        self.assertIn("waiting for digits@1 to be validated", optimize.detail)
        self.assertFalse(Job.objects.exists())

        with self.captureOnCommitCallbacks(execute=False):
            do_finish_validation(self.version.pk, ModelVersionStatus.READY)
        optimize.refresh_from_db()
        job = Job.objects.get()
        self.assertEqual((optimize.status, optimize.job), (AlertActionStatus.SUBMITTED, job))
        self.assertEqual(list(alert.jobs.all()), [job])

    def test_a_waiting_action_fails_saying_why_when_the_version_is_rejected(self):
        from dashboard.alerting.actions import on_active_version_settled
        from dashboard.models import ModelVersionStatus

        type(self.version).objects.filter(pk=self.version.pk).update(status=ModelVersionStatus.VALIDATING)
        alert = self.fire(world.rule())
        type(self.version).objects.filter(pk=self.version.pk).update(
            status=ModelVersionStatus.REJECTED, status_reason="forward pass failed"
        )
        on_active_version_settled(type(self.version).objects.get(pk=self.version.pk))
        optimize = alert.actions.get(kind="optimize")
        self.assertEqual(optimize.status, AlertActionStatus.FAILED)
        self.assertIn("rejected: forward pass failed", optimize.detail)
        self.assertFalse(Job.objects.exists())

    def test_the_job_names_its_alert_and_deployment_in_the_api_and_on_its_page(self):
        alert = self.fire(world.rule())
        job = Job.objects.get()
        self.client.force_login(self.alice)

        body = self.client.get(f"/api/jobs/{job.pk}", **self.bearer()).json()
        self.assertEqual((body["alert"], body["deployment"]), (alert.pk, self.deployment.name))
        listed = self.client.get("/api/jobs", **self.bearer()).json()
        self.assertEqual((listed[0]["alert"], listed[0]["deployment"]), (alert.pk, self.deployment.name))
        page = self.client.get(f"/jobs/{job.pk}/").content.decode()
        self.assertIn(f'href="/alerts/{alert.pk}/"', page)
        self.assertIn(f'href="/deployments/{self.deployment.name}/"', page)

    def test_repeats_and_other_states_start_nothing(self):
        rule = world.rule()
        alert = world.alert(rule, self.deployment)
        world.move(alert, AlertState.NODATA)
        world.move(alert, AlertState.PENDING)
        self.assertFalse(Job.objects.exists())
        alert = self.fire(rule)
        dispatch.alert_repeat(alert)
        world.move(alert, AlertState.RESOLVED)
        self.assertEqual(Job.objects.count(), 1)

    def test_the_action_keys_override_the_serving_config(self):
        action = {**world.QUANTIZE, "batch_sizes": [1, 8], "measure_budget_s": 1.0, "max_accuracy_drop": 0.05}
        self.fire(world.rule([action]))
        job = Job.objects.get()
        self.assertEqual((job.params["batch_sizes"], job.params["measure_budget_s"]), ([1, 8], 1.0))
        self.assertNotIn("max_accuracy_drop", job.params, "a promotion constraint, not a job parameter")

    def test_auto_optimize_gets_the_deployment_batch_size_and_its_constraints(self):
        self.fire(world.rule([{"kind": "auto_optimize", "max_accuracy_drop": 0.02, "time_budget_s": 60}]))
        job = Job.objects.get()
        self.assertEqual(job.kind, "auto_optimize")
        self.assertEqual((job.params["batch_size"], job.params["max_accuracy_drop"]), (8, 0.02))

    def test_a_failing_action_is_logged_and_the_next_still_runs(self):
        actions = [{"kind": "optimize", "passes": [{"name": "no_such_pass"}]}, {"kind": "auto_optimize"}]
        alert = self.fire(world.rule(actions))

        failed, submitted = alert.actions.order_by("position")
        self.assertEqual(failed.status, AlertActionStatus.FAILED)
        self.assertIn("no_such_pass", failed.detail)
        self.assertEqual(submitted.status, AlertActionStatus.SUBMITTED)
        self.assertEqual(Job.objects.get().kind, "auto_optimize")

    def test_later_job_actions_wait_behind_the_one_in_flight(self):
        alert = self.fire(world.rule([world.QUANTIZE, {"kind": "auto_optimize"}]))
        first, second = alert.actions.order_by("position")
        self.assertEqual(first.status, AlertActionStatus.SUBMITTED)
        self.assertEqual(second.status, AlertActionStatus.BLOCKED)
        self.assertIn(f"job #{first.job_id} is still queued", second.detail)
        self.assertEqual(Job.objects.count(), 1)

    def test_an_alert_without_a_deployment_cannot_optimize_and_says_why(self):
        alert = self.fire(world.rule([world.QUANTIZE]), deployment=None)
        (row,) = alert.actions.all()
        self.assertEqual(row.status, AlertActionStatus.FAILED)
        self.assertIn("not about a deployment", row.detail)
        self.assertFalse(Job.objects.exists())


class GuardTests(AlertActionsTestCase):
    def test_a_job_in_flight_blocks_another_firing(self):
        rule = world.rule()
        self.fire(rule)
        second = self.fire(world.rule(name="other rule"))  # another rule is not held back
        third = self.fire(rule)

        self.assertEqual(second.jobs.count(), 1)
        self.assertFalse(third.jobs.exists())
        held = third.actions.get(kind="optimize")
        self.assertEqual(held.status, AlertActionStatus.BLOCKED)
        self.assertIn("one job at a time", held.detail)

    def test_a_second_firing_inside_the_cooldown_starts_no_job_and_one_after_it_does(self):
        rule = world.rule(cooldown_s=1800)
        first = self.fire(rule)
        self.end(first.jobs.get(), ago_s=600)

        inside = self.fire(rule)
        self.assertFalse(inside.jobs.exists())
        self.assertIn("cooling down", inside.actions.get(kind="optimize").detail)

        self.end(first.jobs.get(), ago_s=1900)
        after = self.fire(rule)
        self.assertEqual(after.jobs.count(), 1)

    def test_a_failed_job_counts_for_the_cooldown_too_and_never_refires(self):
        rule = world.rule(cooldown_s=1800)
        first = self.fire(rule)
        with self.captureOnCommitCallbacks(execute=True):
            from dashboard.actions import do_finish_job

            do_finish_job(first.jobs.get().pk, JobStatus.FAILED, error="boom")
        self.assertEqual(Job.objects.count(), 1, "a job's failure starts nothing by itself")
        self.assertFalse(self.fire(rule).jobs.exists())

    @mock.patch("dashboard.alerting.notify.notify_transition")
    def test_after_max_attempts_a_person_is_told_once(self, notify_transition):
        rule = world.rule(max_attempts=1, cooldown_s=0)
        alert = self.fire(rule)
        self.end(alert.jobs.get(), ago_s=10)

        # Still the same episode: it went to no data and back to firing, twice.
        for _ in range(2):
            world.move(alert, AlertState.NODATA)
            with self.captureOnCommitCallbacks(execute=False):
                world.move(alert, AlertState.FIRING)

        self.assertEqual(alert.jobs.count(), 1)
        held = alert.actions.filter(kind="optimize").order_by("-id").first()
        self.assertEqual(held.status, AlertActionStatus.BLOCKED)
        self.assertIn("1 of 1 attempts", held.detail)
        (event,) = alert.events.filter(to_state=NEEDS_ATTENTION)
        self.assertIn("a person must look", event.reason)
        told = [
            call.args[1]
            for call in notify_transition.call_args_list
            if call.args[1].to_state == NEEDS_ATTENTION
        ]
        self.assertEqual(told, [event])
        # A new episode has its own attempts.
        self.assertEqual(self.fire(rule).jobs.count(), 1)


class ApprovalTests(AlertActionsTestCase):
    def setUp(self):
        super().setUp()
        self.viewer = get_user_model().objects.create_user("vera", password="pw-vera-12345")
        _row, self.viewer_token = ApiToken.issue(self.viewer, Role.VIEWER)

    def approve(self, alert, token=None, query=""):
        with self.captureOnCommitCallbacks(execute=False):
            return self.client.post(f"/api/alerts/{alert.pk}/approve{query}", **self.bearer(token))

    def test_no_job_until_an_operator_approves_in_one_click(self):
        alert = self.fire(world.rule(require_approval=True))
        row = alert.actions.get(kind="optimize")
        self.assertEqual(row.status, AlertActionStatus.AWAITING_APPROVAL)
        self.assertFalse(Job.objects.exists())

        self.assertEqual(self.approve(alert, self.viewer_token).status_code, 403)
        self.assertFalse(Job.objects.exists())

        response = self.approve(alert)
        self.assertEqual(response.status_code, 200, response.content)
        body = response.json()
        self.assertEqual((body["status"], body["approved_by"]), ("submitted", "alice"))
        job = Job.objects.get()
        self.assertEqual((job.alert, job.deployment, job.owner), (alert, self.deployment, self.alice))

        again = self.approve(alert)
        self.assertEqual(again.status_code, 400)
        self.assertIn("no action awaiting approval", again.json()["error"])

    def test_approval_keeps_the_guards(self):
        rule = world.rule(require_approval=True)
        earlier = self.fire(rule)
        self.approve(earlier)
        waiting = self.fire(rule)
        response = self.approve(waiting)
        self.assertEqual(response.status_code, 400)
        self.assertIn("one job at a time", response.json()["error"])
        self.assertEqual(waiting.actions.get(kind="optimize").status, AlertActionStatus.AWAITING_APPROVAL)

    def test_a_resolved_alert_has_nothing_left_to_approve(self):
        alert = self.fire(world.rule(require_approval=True))
        world.move(alert, AlertState.RESOLVED)
        self.assertEqual(alert.actions.get(kind="optimize").status, AlertActionStatus.EXPIRED)
        self.assertEqual(self.approve(alert).status_code, 400)
        self.assertFalse(Job.objects.exists())

    def test_an_unknown_alert_is_404(self):
        response = self.client.post("/api/alerts/999999/approve", **self.bearer())
        self.assertEqual(response.status_code, 404)
        self.assertIn("not found", response.json()["error"])


class ValidateActionsTests(BaseTestCase):
    def test_known_actions_pass(self):
        actions = [{"kind": "notify"}, world.QUANTIZE, {"kind": "auto_optimize", "max_accuracy_drop": 0.02}]
        self.assertEqual(validate_actions(actions), actions)

    def test_each_problem_is_named(self):
        for actions, message in [
            ("optimize", "must be a list"),
            ([{"kind": "reboot"}], "unknown kind 'reboot'"),
            ([{"kind": "notify", "to": "x"}], "notify takes no parameters"),
            ([{"kind": "optimize"}], "action 1 (optimize)"),
            (
                [{"kind": "optimize", "passes": [{"name": "quantize_dynamic"}], "threads": 0}],
                "Threads 0 is too small",
            ),
            ([{"kind": "auto_optimize", "max_accuracy_drop": 2}], "too large"),
            ([{**world.QUANTIZE, "max_accuracy_drop": "1%"}], "max_accuracy_drop must be a number"),
        ]:
            with self.subTest(actions=actions):
                with self.assertRaises(InvalidAction) as caught:
                    validate_actions(actions)
                self.assertIn(message, str(caught.exception))


class DocumentedExampleTests(BaseTestCase):
    def test_the_article_demo_rule_is_valid(self):
        """The rule scripts/demo-slow-deployment and docs/alerts.md create passes validation."""
        import importlib.machinery
        import importlib.util
        from pathlib import Path
        from types import SimpleNamespace

        path = Path(__file__).resolve().parents[2] / "scripts" / "demo-slow-deployment"
        loader = importlib.machinery.SourceFileLoader("demo_slow_deployment", str(path))
        module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
        loader.exec_module(module)
        body = module.rule_body(SimpleNamespace(name="article-demo", rule="r", no_auto_promote=False))
        self.assertEqual(validate_actions(body["actions"]), body["actions"])
        self.assertEqual((body["threshold"], body["target"]["window"]), (50.0, "last_5"))


class RobustnessTests(AlertActionsTestCase):
    def test_a_fault_in_the_actions_never_reaches_the_evaluator(self):
        rule = world.rule()
        with mock.patch("dashboard.alerting.actions.guard", side_effect=RuntimeError("database hiccup")):
            alert = self.fire(rule)  # no exception out of dispatch.alert_changed
        alert.refresh_from_db()
        self.assertEqual(alert.state, AlertState.FIRING)
        self.assertEqual(list(alert.events.values_list("to_state", flat=True)), ["firing"])
        self.assertFalse(Job.objects.exists())
