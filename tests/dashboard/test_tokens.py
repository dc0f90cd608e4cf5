from __future__ import annotations

import contextlib
import io

from django.contrib.auth import get_user_model
from django.utils import timezone

from dashboard.models import ApiToken, hash_token
from perfmon.cli import main
from tests.dashboard.base import BaseTestCase


class TokenCommandTestCase(BaseTestCase):
    def run_cli(self, *argv):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(argv))
        return code, out.getvalue().strip(), err.getvalue()

    def test_it_prints_a_token_that_authenticates_and_stores_only_its_hash(self):
        code, token, _ = self.run_cli("token", "alice")
        self.assertEqual(code, 0)
        self.assertTrue(token.startswith("pm_"))
        self.assertFalse(ApiToken.objects.filter(token_hash=token).exists())
        self.assertTrue(ApiToken.objects.filter(token_hash=hash_token(token), user=self.alice).exists())
        self.assertEqual(self.client.get("/api/jobs", **self.bearer(token)).status_code, 200)

    def test_it_refuses_an_unknown_user(self):
        code, out, err = self.run_cli("token", "mallory")
        self.assertEqual((code, out), (2, ""))
        self.assertIn("no user named 'mallory'", err)

    def test_a_token_of_a_deactivated_user_stops_working(self):
        self.alice.is_active = False
        self.alice.save()
        self.assertEqual(self.client.get("/api/jobs", **self.bearer()).status_code, 401)


class TokenRoleAndExpiryCommandTestCase(BaseTestCase):
    run_cli = TokenCommandTestCase.run_cli

    def test_it_gives_a_token_the_role_asked_for_and_never_more_than_the_users(self):
        code, raw, _ = self.run_cli("token", "alice", "--role", "viewer")
        self.assertEqual(code, 0)
        self.assertEqual(ApiToken.objects.get(token_hash=hash_token(raw)).role, "viewer")
        code, out, err = self.run_cli("token", "alice", "--role", "admin")
        self.assertEqual((code, out), (2, ""))
        self.assertIn("cannot exceed yours", err)

    def test_the_default_role_is_the_users(self):
        _code, raw, _ = self.run_cli("token", "alice")
        self.assertEqual(ApiToken.objects.get(token_hash=hash_token(raw)).role, "operator")

    def test_it_sets_an_expiry_and_refuses_a_bad_one(self):
        code, raw, _ = self.run_cli("token", "alice", "--expires", "30d")
        self.assertEqual(code, 0)
        expires_at = ApiToken.objects.get(token_hash=hash_token(raw)).expires_at
        self.assertAlmostEqual((expires_at - timezone.now()).total_seconds(), 30 * 86400, delta=600)
        for bad in ["yesterday", "2001-01-01", "0d"]:
            code, out, err = self.run_cli("token", "alice", "--expires", bad)
            self.assertEqual((code, out), (2, ""), bad)

    def test_an_agent_gets_a_token_of_its_own(self):
        code, raw, _ = self.run_cli("token", "--agent", "gpu-7")
        self.assertEqual(code, 0)
        token = ApiToken.objects.get(token_hash=hash_token(raw))
        self.assertEqual(
            (token.user.username, token.agent_node, token.role), ("agent@gpu-7", "gpu-7", "viewer")
        )
        self.assertFalse(token.user.has_usable_password())
        self.assertEqual(self.client.get("/api/nodes", **self.bearer(raw)).status_code, 200)


class TokensPageTestCase(BaseTestCase):
    def test_it_lists_creates_and_revokes_my_tokens_only(self):
        bob = get_user_model().objects.create_user("bob", password="pw-bob-12345")
        ApiToken.issue(bob, "viewer", label="bobs")
        self.client.force_login(self.alice)
        page = self.client.get("/tokens/").content.decode()
        self.assertIn(ApiToken.objects.get(user=self.alice).hint, page)
        self.assertNotIn("bobs", page)

        response = self.client.post("/tokens/", {"label": "ci", "role": "viewer", "expires": "7d"})
        self.assertEqual(response.status_code, 201)
        raw = response.context["new_token"]
        self.assertEqual(self.client.get("/api/jobs", **self.bearer(raw)).status_code, 200)

        bobs = ApiToken.objects.get(user=bob)
        self.assertEqual(self.client.post(f"/tokens/{bobs.pk}/revoke/").status_code, 403)
        self.assertTrue(ApiToken.objects.filter(pk=bobs.pk).exists())

    def test_a_viewer_cannot_make_an_operator_token(self):
        viewer = get_user_model().objects.create_user("vera", password="pw-vera-12345")
        self.client.force_login(viewer)
        response = self.client.post("/tokens/", {"role": "operator", "expires": "never"})
        self.assertEqual(response.status_code, 400)
        self.assertFalse(ApiToken.objects.filter(user=viewer).exists())

    def test_only_an_admin_makes_agent_tokens(self):
        self.client.force_login(self.alice)
        self.assertEqual(
            self.client.post("/tokens/agent/", {"node": "gpu-9", "expires": "never"}).status_code, 403
        )
        root = get_user_model().objects.create_superuser("root", password="pw-root-12345")
        self.client.force_login(root)
        self.assertEqual(
            self.client.post("/tokens/agent/", {"node": "gpu-9", "expires": "never"}).status_code, 201
        )
        self.assertTrue(ApiToken.objects.filter(agent_node="gpu-9").exists())
