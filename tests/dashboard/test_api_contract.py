"""The API answers as its OpenAPI document says: one error shape, the right status for each refusal."""

from __future__ import annotations

import json

from tests.dashboard.base import BaseTestCase

JOB = {"kind": "benchmark", "model": "SimpleModel", "params": {"batch_sizes": [1], "iterations": 1}}


class TestApiContract(BaseTestCase):
    def test_an_unauthenticated_post_is_401_json_not_a_csrf_complaint(self):
        # CSRF enforced as in a real client (the test client skips it by default).
        client = self.client_class(enforce_csrf_checks=True)
        response = client.post("/api/jobs", json.dumps(JOB), content_type="application/json")
        self.assertEqual(response.status_code, 401)
        self.assertIn("authentication required", response.json()["error"])

    def test_a_session_post_without_csrf_token_is_still_refused(self):
        client = self.client_class(enforce_csrf_checks=True)
        client.force_login(self.alice)
        response = client.post("/api/jobs", json.dumps(JOB), content_type="application/json")
        self.assertEqual(response.status_code, 403)
        self.assertIn("CSRF", response.json()["error"])

    def test_a_10_mb_body_is_a_json_400(self):
        body = json.dumps({**JOB, "pad": "x" * (10 << 20)})
        response = self.client.post("/api/jobs", body, content_type="application/json", **self.bearer())
        self.assertEqual(response.status_code, 400)
        self.assertIn("too large", response.json()["error"])

    def test_json_must_say_it_is_json(self):
        body = json.dumps(JOB)
        for content_type in ["text/plain", "application/x-www-form-urlencoded", ""]:
            response = self.client.post("/api/jobs", body, content_type=content_type, **self.bearer())
            self.assertEqual(response.status_code, 415, content_type)
            self.assertIn("application/json", response.json()["error"])

    def test_json_must_be_utf8(self):
        response = self.client.post(
            "/api/jobs", json.dumps(JOB).encode("utf-16"), content_type="application/json", **self.bearer()
        )
        self.assertEqual(response.status_code, 400)
        self.assertIn("not UTF-8", response.json()["error"])
        response = self.client.post(
            "/api/jobs", json.dumps(JOB), content_type="application/json; charset=utf-16", **self.bearer()
        )
        self.assertEqual(response.status_code, 415)

    def test_the_openapi_document_and_docs_need_a_user(self):
        response = self.client.get("/api/openapi.json")
        self.assertEqual(response.status_code, 401)
        self.assertIn("error", response.json())
        self.assertEqual(self.client.get("/api/docs").status_code, 302)
        self.assertEqual(self.client.get("/api/openapi.json", **self.bearer()).status_code, 200)
        self.client.force_login(self.alice)
        self.assertEqual(self.client.get("/api/docs").status_code, 200)

    def test_api_nodes_is_documented_with_its_own_shape(self):
        doc = self.client.get("/api/openapi.json", **self.bearer()).json()
        ok = doc["paths"]["/api/nodes"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        name = ok["items"]["$ref"].rsplit("/", 1)[-1]
        self.assertIn("gpu_status", doc["components"]["schemas"][name]["properties"])
        catalog = doc["components"]["schemas"]["CatalogOut"]["properties"]["nodes"]["items"]["$ref"]
        self.assertNotEqual(catalog.rsplit("/", 1)[-1], name)

    def test_every_write_documents_its_refusals(self):
        doc = self.client.get("/api/openapi.json", **self.bearer()).json()
        for path, method in [
            ("/api/jobs", "post"),
            ("/api/jobs/{job_id}/cancel", "post"),
            ("/api/models", "post"),
        ]:
            statuses = set(doc["paths"][path][method]["responses"])
            self.assertLessEqual({"400", "401", "403"}, statuses, path)

    def test_the_document_has_each_response_status_once(self):
        """ninja keys statuses as ints and the extra refusals were strings: "400" came out twice in
        the JSON, which Swagger UI refuses to read (a blank docs page)."""
        raw = self.client.get("/api/openapi.json", **self.bearer()).content.decode()
        pairs_seen = []

        def no_duplicates(pairs):
            keys = [key for key, _ in pairs]
            pairs_seen.append(len(keys) == len(set(keys)))
            return dict(pairs)

        json.loads(raw, object_pairs_hook=no_duplicates)
        self.assertTrue(all(pairs_seen))
