"""The deployment pages: list, detail with its sections, promote and roll back for operators only."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from dashboard.models import Deployment, Role
from dashboard.permissions import grant
from tests.dashboard.test_deployments_api import DeploymentApiTestCase


class TestDeploymentPages(DeploymentApiTestCase):
    def setUp(self):
        super().setUp()
        self.create(model="digits@1")
        self.client.force_login(self.alice)

    def test_list_and_detail(self):
        self.assertContains(self.client.get("/deployments/"), 'href="/deployments/digits-prod/"')
        page = self.client.get("/deployments/digits-prod/")
        for text in [
            "digits@1",
            "objective 50 ms",
            'id="latency-chart"',
            'id="alerts"',
            'id="optimizations"',
            'id="promote-form"',
            "deployment-chart-config",
            "deploy:digits-prod:sample_ms",
        ]:
            self.assertContains(page, text)
        self.assertEqual(self.client.get("/deployments/nope/").status_code, 404)

    def test_promote_and_roll_back_buttons(self):
        response = self.client.post("/deployments/digits-prod/promote/", {"version": "digits@3"}, follow=True)
        self.assertContains(response, "watching until")
        self.assertEqual(Deployment.objects.get().active_version.version, 3)
        self.client.post("/deployments/digits-prod/rollback/")
        self.assertEqual(Deployment.objects.get().active_version.version, 1)

    def test_a_viewer_sees_no_buttons_and_cannot_promote(self):
        viewer = get_user_model().objects.create_user("vic")
        grant(viewer, Role.VIEWER)
        self.client.force_login(viewer)
        self.assertNotContains(self.client.get("/deployments/digits-prod/"), 'id="promote-form"')
        self.assertEqual(
            self.client.post("/deployments/digits-prod/promote/", {"version": "digits@3"}).status_code, 403
        )
        self.assertEqual(Deployment.objects.get().active_version.version, 1)

    def test_the_admin_lists_deployments(self):
        admin = get_user_model().objects.create_superuser("root", password="x")
        self.client.force_login(admin)
        self.assertContains(self.client.get("/admin/dashboard/deployment/"), "digits-prod")
