from __future__ import annotations

import contextlib
import io

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
