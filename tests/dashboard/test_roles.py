"""Roles: viewers read, operators run the fleet, admins also manage tokens; enforced in the actions,
so pages, API and WebSocket agree."""

from __future__ import annotations

import json
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.utils import timezone

from dashboard.models import ApiToken, Job, JobStatus, ModelVersion, RegisteredModel, Role
from dashboard.permissions import HIDDEN_COMMAND, grant, redact_commands, role_of
from tests.dashboard.base import BaseTestCase
from tests.engine import test_registry_samples as samples

JOB = {"kind": "benchmark", "model": "SimpleModel", "params": {"batch_sizes": [1], "iterations": 1}}


class RolesTestCase(BaseTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        users = get_user_model()
        cls.victor = users.objects.create_user("victor", password="viewer-pw-123")  # no role: viewer
        cls.olga = users.objects.create_user("olga", password="operator-pw-123")
        grant(cls.olga, Role.OPERATOR)
        cls.root = users.objects.create_superuser("root", password="root-pw-12345")
        _t, cls.victor_token = ApiToken.issue(cls.victor, Role.VIEWER)
        _t, cls.olga_token = ApiToken.issue(cls.olga, Role.OPERATOR)
        cls.admins_job = Job.objects.create(
            kind="benchmark", model_name="SimpleModel", params={}, owner=cls.root
        )

    def setUp(self) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="roles-"))
        self.addCleanup(shutil.rmtree, self.data_dir, ignore_errors=True)
        self.enterContext(override_settings(DATA_DIR=self.data_dir))

    def post_json(self, path: str, body: dict, token: str):
        return self.client.post(path, json.dumps(body), content_type="application/json", **self.bearer(token))

    def upload(self, token: str, name: str = "mlp"):
        body = {
            "file": SimpleUploadedFile("m.safetensors", samples.safetensors_state_dict("SimpleModel")),
            "name": name,
            "architecture": "SimpleModel",
        }
        return self.client.post("/api/models", body, **self.bearer(token))


class TestViewer(RolesTestCase):
    def test_a_new_user_is_a_viewer_and_a_superuser_an_admin(self):
        self.assertEqual(role_of(self.victor), Role.VIEWER)
        self.assertEqual(role_of(self.olga), Role.OPERATOR)
        self.assertEqual(role_of(self.root), Role.ADMIN)

    def test_every_api_write_is_403_and_stores_nothing(self):
        jobs_before = Job.objects.count()
        for response in [
            self.post_json("/api/jobs", JOB, self.victor_token),
            self.post_json(f"/api/jobs/{self.admins_job.pk}/cancel", {}, self.victor_token),
            self.upload(self.victor_token),
        ]:
            self.assertEqual(response.status_code, 403, response.content)
            self.assertIn("needs the operator role", response.json()["error"])
        self.assertEqual(Job.objects.count(), jobs_before)
        self.assertEqual(Job.objects.get(pk=self.admins_job.pk).status, JobStatus.QUEUED)
        self.assertEqual(RegisteredModel.objects.count(), 0)

    def test_every_form_post_is_403(self):
        self.client.force_login(self.victor)
        form = {
            "model": "SimpleModel",
            "batch_sizes": "1",
            "iterations": "1",
            "time_budget_s": "1",
            "precision": "fp32",
        }
        upload = {
            "file": SimpleUploadedFile("m.safetensors", b"x"),
            "name": "mlp",
            "architecture": "SimpleModel",
        }
        for path, body in [
            ("/benchmark/", form),
            (f"/jobs/{self.admins_job.pk}/cancel/", {}),
            ("/models/", upload),
        ]:
            self.assertEqual(self.client.post(path, body).status_code, 403, path)
        self.assertEqual(Job.objects.get(pk=self.admins_job.pk).status, JobStatus.QUEUED)
        self.assertEqual(RegisteredModel.objects.count(), 0)

    def test_a_viewer_still_reads(self):
        self.assertEqual(self.client.get("/api/jobs", **self.bearer(self.victor_token)).status_code, 200)
        self.client.force_login(self.victor)
        self.assertEqual(self.client.get("/jobs/").status_code, 200)

    def test_a_viewer_sees_no_command_lines(self):
        frame = json.dumps(
            {
                "type": "sample",
                "host": {"top_processes": {"by_cpu": [{"pid": 1, "command": "x --key=s3cret"}]}},
            }
        )
        redacted = redact_commands(frame)
        self.assertNotIn("s3cret", redacted)
        self.assertIn(HIDDEN_COMMAND, redacted)


class TestOperator(RolesTestCase):
    def test_an_operator_cancels_anyones_job(self):
        # Operators share the fleet: one must be able to stop a colleague's (or the admin's) job.
        response = self.post_json(f"/api/jobs/{self.admins_job.pk}/cancel", {}, self.olga_token)
        self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual(Job.objects.get(pk=self.admins_job.pk).status, JobStatus.CANCELLED)

    def test_an_operator_cannot_add_a_version_to_someone_elses_model(self):
        self.assertEqual(self.upload(self.alice_token, name="alices-model").status_code, 201)
        response = self.upload(self.olga_token, name="alices-model")
        self.assertEqual(response.status_code, 403, response.content)
        self.assertIn("only its owner or an admin", response.json()["error"])
        self.assertEqual(ModelVersion.objects.filter(model__name="alices-model").count(), 1)

    def test_the_owner_and_an_admin_can_add_versions(self):
        self.assertEqual(self.upload(self.alice_token, name="alices-model").status_code, 201)
        self.assertEqual(self.upload(self.alice_token, name="alices-model").status_code, 201)
        _t, root_token = ApiToken.issue(self.root, Role.ADMIN)
        self.assertEqual(self.upload(root_token, name="alices-model").status_code, 201)
        self.assertEqual(ModelVersion.objects.filter(model__name="alices-model").count(), 3)


class TestTokenRoles(RolesTestCase):
    def test_a_viewer_token_of_an_operator_cannot_write(self):
        _t, raw = ApiToken.issue(self.olga, Role.VIEWER)
        self.assertEqual(self.post_json("/api/jobs", JOB, raw).status_code, 403)

    def test_a_token_never_does_more_than_its_user(self):
        # A token made as "admin" for a viewer (as old tokens became) acts as a viewer.
        _t, raw = ApiToken.issue(self.victor, Role.ADMIN)
        self.assertEqual(self.post_json("/api/jobs", JOB, raw).status_code, 403)

    def test_demoting_a_user_demotes_their_tokens(self):
        grant(self.olga, Role.VIEWER)
        self.assertEqual(self.post_json("/api/jobs", JOB, self.olga_token).status_code, 403)

    def test_an_expired_token_is_401_and_says_so(self):
        token, raw = ApiToken.issue(self.alice, Role.OPERATOR, expires_at=timezone.now() + timedelta(hours=1))
        self.assertEqual(self.client.get("/api/jobs", **self.bearer(raw)).status_code, 200)
        ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
        response = self.client.get("/api/jobs", **self.bearer(raw))
        self.assertEqual(response.status_code, 401)
        self.assertIn("expired", response.json()["error"])

    def test_a_revoked_token_is_401(self):
        self.client.force_login(self.alice)
        token = ApiToken.objects.get(user=self.alice)
        self.assertEqual(self.client.post(f"/tokens/{token.pk}/revoke/").status_code, 302)
        self.client.logout()
        self.assertEqual(self.client.get("/api/jobs", **self.bearer()).status_code, 401)


class TestAdmin(RolesTestCase):
    def test_the_admin_shows_each_users_role_and_the_field_to_change_it(self):
        self.client.force_login(self.root)
        listing = self.client.get("/admin/auth/user/").content.decode()
        self.assertIn("perfmon role", listing.lower())
        self.assertIn("operator", listing)
        page = self.client.get(f"/admin/auth/user/{self.victor.pk}/change/").content.decode()
        self.assertIn('name="perfmon_role-0-role"', page)


class TestForbiddenPage(RolesTestCase):
    def test_a_viewer_is_told_why_a_form_post_was_refused(self):
        self.client.force_login(self.victor)
        response = self.client.post(f"/jobs/{self.admins_job.pk}/cancel/")
        self.assertEqual(response.status_code, 403)
        self.assertContains(response, "cancelling a job needs the operator role", status_code=403)
