from __future__ import annotations

from dashboard.models import Job
from tests.dashboard.base import BaseTestCase


class PagesTestCase(BaseTestCase):
    def test_pages_redirect_anonymous_users_to_login(self):
        for url in ["/", "/benchmark/", "/jobs/", "/jobs/1/"]:
            response = self.client.get(url)
            self.assertEqual(response.status_code, 302, url)
            self.assertTrue(response["Location"].startswith("/login/?next="), url)

    def test_login_leads_to_the_dashboard(self):
        response = self.client.post(
            "/login/", {"username": "alice", "password": "wonderland-42"}, follow=True
        )
        self.assertContains(response, 'id="host-chart"')
        self.assertContains(response, 'data-node="gpu-node-1"')

    def test_a_wrong_password_is_refused(self):
        response = self.client.post("/login/", {"username": "alice", "password": "nope"})
        self.assertContains(response, "Please enter a correct username and password", count=1)

    def test_the_chart_script_is_served_locally(self):
        self.client.force_login(self.alice)
        page = self.client.get("/").content.decode()
        self.assertIn("/static/vendor/chart.umd.min.js", page)
        self.assertNotIn("cdn", page.lower())
        self.assertEqual(self.client.get("/static/vendor/chart.umd.min.js").status_code, 200)


class BenchmarkFormTestCase(BaseTestCase):
    def setUp(self):
        self.client.force_login(self.alice)

    def submit(self, **fields):
        data = {
            "model": "SimpleModel",
            "batch_sizes": "32",
            "iterations": 200,
            "precision": "fp32",
            "time_budget_s": 10,
            **fields,
        }
        with self.captureOnCommitCallbacks(execute=False):
            return self.client.post("/benchmark/", data)

    def test_it_creates_a_job_and_shows_its_page(self):
        response = self.submit(
            model="StudentModel",
            batch_sizes="1, 8",
            iterations=50,
            precision="bf16",
            concurrency="1,2",
            threads=1,
        )
        job = Job.objects.get()
        self.assertRedirects(response, f"/jobs/{job.pk}/", fetch_redirect_response=False)
        self.assertEqual(
            (job.params["batch_sizes"], job.params["iterations"], job.params["device"]), ([1, 8], 50, "cpu")
        )
        self.assertEqual(job.queue, "jobs", "no target chosen: any node")
        self.assertEqual(
            (job.params["precision"], job.params["concurrency"], job.params["threads"]), ("bf16", [1, 2], 1)
        )
        page = self.client.get(f"/jobs/{job.pk}/")
        self.assertContains(page, "StudentModel")
        self.assertContains(page, 'id="job-progress"')

    def test_it_lists_the_zoo(self):
        page = self.client.get("/benchmark/").content.decode()
        for name in ["PerformanceTestModel", "SimpleModel", "TeacherModel", "StudentModel"]:
            self.assertIn(f'value="{name}"', page)

    def test_it_rejects_bad_input_with_400_and_stores_nothing(self):
        for fields, message in [
            ({"model": "Nope"}, "Select a valid choice"),
            ({"batch_sizes": "0"}, "Batch size 0 is too small: at least 1"),
            ({"batch_sizes": "8, 4097"}, "Batch size 4097 is too large: at most 4096"),
            ({"batch_sizes": "8, lots"}, "whole numbers separated by commas"),
            ({"batch_sizes": ""}, "This field is required"),
            ({"precision": "fp8"}, "Select a valid choice"),
            ({"concurrency": "0"}, "Concurrency 0 is too small: at least 1"),
            ({"iterations": 100_001}, "At most 100000 iterations."),
            ({"iterations": "x"}, "Enter a whole number"),
        ]:
            response = self.submit(**fields)
            self.assertEqual(response.status_code, 400)
            field = next(iter(fields))
            self.assertIn(message, field_error(response, field), fields)
            self.assertNotContains(response, 'id="form-errors"', status_code=400)
        self.assertFalse(Job.objects.exists())

    def test_it_routes_to_the_chosen_node(self):
        self.submit(target="gpu-node-1|cpu")
        self.assertEqual(Job.objects.get().queue, "node.gpu-node-1.cpu")
        self.assertContains(self.client.get("/benchmark/"), "gpu-node-1 · CPU")


def field_error(response, field: str) -> str:
    """The text of the error shown beside ``field`` on the benchmark form ("" if none)."""
    import re

    found = re.search(rf'data-field="{field}"[^>]*>(.*?)</div>', response.content.decode(), re.S)
    return re.sub(r"<[^>]+>", "", found.group(1)) if found else ""


class BenchmarkPrefillTestCase(BaseTestCase):
    def setUp(self):
        self.client.force_login(self.alice)

    def test_benchmark_this_preselects_the_model(self):
        page = self.client.get("/benchmark/?model=TeacherModel").content.decode()
        self.assertRegex(page, r'<option value="TeacherModel"[^>]*selected')

    def test_a_run_again_id_that_is_not_ascii_digits_opens_an_empty_form(self):
        for source in ["²", "9" * 40, "-1", "x"]:
            self.assertEqual(self.client.get("/benchmark/", {"from": source}).status_code, 200, source)
