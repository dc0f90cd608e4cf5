"""What every page shares: the favicon, the not-found page and the login form's one error."""

from __future__ import annotations

import re

from django.test import override_settings

from tests.dashboard.base import BaseTestCase


class FaviconTestCase(BaseTestCase):
    def test_every_page_links_a_favicon_that_is_served(self):
        self.client.force_login(self.alice)
        for url in ["/", "/api/docs", "/models/"]:
            page = self.client.get(url).content.decode()
            icon = re.search(r'<link rel="icon" href="([^"]+)"', page)
            self.assertIsNotNone(icon, url)
            self.assertEqual(self.client.get(icon.group(1)).status_code, 200)


@override_settings(DEBUG=False)
class NotFoundTestCase(BaseTestCase):
    def test_an_unknown_model_id_shows_perfmons_not_found_page(self):
        self.client.force_login(self.alice)
        # (An unknown job id has a page of its own, "Job #N not found": tests/e2e/test_jobs_browser.py.)
        for url in ["/models/987654/", "/no-such-page/"]:
            response = self.client.get(url)
            self.assertEqual(response.status_code, 404, url)
            page = response.content.decode()
            self.assertIn('id="not-found"', page, url)
            self.assertIn('class="topbar"', page, url)  # inside perfmon's frame, with its navigation
            self.assertIn(f"<code>{url}</code>", page)

    def test_the_not_found_page_escapes_the_address(self):
        response = self.client.get("/<script>x</script>/")
        self.assertEqual(response.status_code, 404)
        self.assertNotIn("<script>x</script>", response.content.decode())


class LoginErrorTestCase(BaseTestCase):
    def test_a_wrong_password_shows_one_error(self):
        response = self.client.post("/login/", {"username": "alice", "password": "nope"})
        page = response.content.decode()
        # One element says it (class "error" or Django's "errorlist"), not a paraphrase plus the original.
        self.assertEqual(len(re.findall(r'class="error', page)), 1)
        self.assertEqual(page.count("Please enter a correct username and password"), 1)
