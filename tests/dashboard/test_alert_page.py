"""The alert page (/alerts/<id>/): state history, value, the jobs the rule started with their
before/after, and the operator's one-click approve, promote and roll back (none for a viewer)."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from dashboard.models import AlertState, Job, ModelVersionStatus
from tests.dashboard import alert_world as world
from tests.dashboard.test_alert_promotion import PromotionTestCase, optimize_result


class AlertPageTests(PromotionTestCase):
    def setUp(self):
        super().setUp()
        self.client.force_login(self.alice)

    def page(self, alert):
        response = self.client.get(f"/alerts/{alert.pk}/")
        self.assertEqual(response.status_code, 200)
        return response.content.decode()

    def test_it_shows_the_history_the_job_and_its_before_and_after(self):
        alert, job = self.run_action(auto_promote=False)
        v2 = self.produced(job)
        self.finish(job, optimize_result(v2, before_ms=62.0, after_ms=31.0, accuracy=0.948))

        html = self.page(alert)
        self.assertIn("Alert #", html)
        self.assertIn('data-to="firing"', html)
        self.assertIn(f'href="/jobs/{job.pk}/"', html)
        self.assertIn("62.000 → 31.000", html)
        self.assertIn("2.00×", html)
        self.assertIn("0.9500 → 0.9480", html)
        self.assertIn("digits@2", html)
        self.assertIn("the rule leaves promotion to an operator", html)
        self.assertIn('id="promote"', html)
        self.assertIn("Full result of optimize job", html)

    def test_an_operator_promotes_and_rolls_back_from_the_page(self):
        alert, job = self.run_action(auto_promote=False)
        v2 = self.produced(job)
        self.finish(job, optimize_result(v2, before_ms=62.0, after_ms=31.0))

        response = self.client.post(f"/alerts/{alert.pk}/promote/")
        self.assertRedirects(response, f"/alerts/{alert.pk}/")
        self.assertEqual(self.active(), v2)
        html = self.page(alert)
        self.assertNotIn('id="promote"', html)
        self.assertIn('id="rollback"', html)
        self.assertIn("Roll back to digits@1", html)

        self.client.post(f"/alerts/{alert.pk}/rollback/")
        self.assertEqual(self.active(), self.v1)
        self.assertNotIn('id="rollback"', self.page(alert))

    def test_approve_from_the_page_starts_the_job(self):
        with self.captureOnCommitCallbacks(execute=False):
            alert = world.fire(world.rule(require_approval=True), self.deployment)
        row = alert.actions.get(kind="optimize")
        self.assertIn(f'id="approve-{row.pk}"', self.page(alert))
        with self.captureOnCommitCallbacks(execute=False):
            response = self.client.post(f"/alerts/{alert.pk}/approve/", {"action": row.pk})
        self.assertRedirects(response, f"/alerts/{alert.pk}/")
        self.assertEqual(Job.objects.get().owner, self.alice)

    def test_a_refusal_is_shown_on_the_page_with_a_400(self):
        alert, job = self.run_action(auto_promote=False)
        v2 = self.produced(job, status=ModelVersionStatus.VALIDATING)
        self.finish(job, optimize_result(v2, before_ms=62.0, after_ms=31.0))
        response = self.client.post(f"/alerts/{alert.pk}/promote/")
        self.assertEqual(response.status_code, 400)
        self.assertIn("digits v2 is validating", response.content.decode())

    def test_a_viewer_sees_the_page_without_the_buttons_and_cannot_post(self):
        with self.captureOnCommitCallbacks(execute=False):
            alert = world.fire(world.rule(require_approval=True), self.deployment)
        viewer = get_user_model().objects.create_user("vera", password="pw-vera-12345")
        self.client.force_login(viewer)
        html = self.page(alert)
        self.assertIn("awaiting approval", html)
        self.assertNotIn("<button", html.split('id="alert-actions"')[1].split("</section>")[0])
        self.assertEqual(self.client.post(f"/alerts/{alert.pk}/approve/").status_code, 403)
        self.assertFalse(Job.objects.exists())

    def test_needs_attention_is_a_banner(self):
        with self.captureOnCommitCallbacks(execute=False):
            alert = world.fire(world.rule(max_attempts=0), self.deployment)
        self.assertIn('id="needs-attention"', self.page(alert))

    def test_an_unknown_alert_is_404(self):
        self.assertEqual(self.client.get("/alerts/999999/").status_code, 404)

    def test_a_rule_without_actions_says_so(self):
        alert = world.alert(world.rule([]), self.deployment, state=AlertState.FIRING)
        self.assertIn("only notifies", self.page(alert))
