"""The API docs page works with no internet: Swagger UI comes from static/vendor/, started by a static script."""

from __future__ import annotations

import re

from tests.dashboard.base import BaseTestCase


class ApiDocsTestCase(BaseTestCase):
    def setUp(self):
        self.client.force_login(self.alice)

    def test_the_docs_page_loads_swagger_ui_from_this_server(self):
        response = self.client.get("/api/docs")
        self.assertEqual(response.status_code, 200)
        page = response.content.decode()
        sources = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', page)
        self.assertIn("/static/vendor/swagger-ui-bundle.js", sources)
        self.assertIn("/static/vendor/swagger-ui.css", sources)
        self.assertIn("/static/js/api-docs.js", sources)
        self.assertEqual([s for s in sources if "//" in s], [], "nothing from another host")
        for source in sources:
            self.assertEqual(self.client.get(source).status_code, 200, source)

    def test_the_docs_page_has_perfmons_frame_and_no_inline_script(self):
        page = self.client.get("/api/docs").content.decode()
        self.assertIn('class="topbar"', page)
        self.assertIn('data-openapi-url="/api/openapi.json"', page)
        # A CSP without 'unsafe-inline' would block any script body written into the page.
        inline = [body for body in re.findall(r"<script[^>]*>(.*?)</script>", page, re.S) if body.strip()]
        self.assertEqual(inline, [])
