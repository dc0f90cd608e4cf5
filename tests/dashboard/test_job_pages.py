"""The jobs list page, the job page (header, partial results, errors, run again), the friendly 404
and the admin's job page."""

from __future__ import annotations

import re
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from dashboard.models import Job, JobStatus
from tests.dashboard.base import BaseTestCase
from tests.dashboard.test_jobs_api_list import TIMES, bench_result, make_job


def text_of(html: str, element_id: str, closing: str = "p|div|dl|td|section") -> str:
    found = re.search(rf'id="{element_id}"[^>]*>(.*?)</(?:{closing})>', html, re.S)
    assert found, f"no #{element_id}"
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split())


class JobsListPageTestCase(BaseTestCase):
    def setUp(self):
        self.client.force_login(self.alice)

    def row(self, page: str, job: Job) -> str:
        return re.search(rf'<tr data-job-id="{job.pk}">(.*?)</tr>', page, re.S).group(1)

    def test_rows_show_headline_figures_duration_and_a_compare_tick(self):
        started = timezone.now() - timedelta(seconds=90)
        done = make_job(
            node_name="gpu-node-1", started_at=started, finished_at=started + timedelta(seconds=42.5)
        )
        queued = make_job(status=JobStatus.QUEUED, result=None)
        page = self.client.get("/jobs/").content.decode()
        row = self.row(page, done)
        self.assertIn("0.500 ms", row, "p50 at the smallest batch size")
        self.assertIn("5656.9/s", row, "the best throughput of the sweep (batch 8)")
        self.assertIn("42.5 s", row)
        self.assertIn("gpu-node-1", row)
        self.assertIn(f'name="ids" value="{done.pk}" form="compare-form"', row)
        self.assertNotIn('name="ids"', self.row(page, queued), "only succeeded jobs can be compared")
        self.assertIn('action="/jobs/compare/"', page)
        self.assertNotIn("times_ms", page)

    def test_filters_narrow_the_list_and_bad_values_say_why(self):
        failed = make_job(status=JobStatus.FAILED, result=None, model_name="TeacherModel")
        ok = make_job()
        page = self.client.get("/jobs/?status=failed").content.decode()
        self.assertIn(f'data-job-id="{failed.pk}"', page)
        self.assertNotIn(f'data-job-id="{ok.pk}"', page)
        self.assertIn('<option value="failed" selected>', page)
        page = self.client.get("/jobs/?model=TeacherModel&status=succeeded").content.decode()
        self.assertIn("No jobs match these filters", page)
        response = self.client.get("/jobs/?status=done")
        self.assertContains(response, "unknown status &#x27;done&#x27;", status_code=400)

    def test_a_long_list_is_paged_and_pages_keep_the_filters(self):
        jobs = [make_job(result=None) for _ in range(55)]
        first = self.client.get("/jobs/?status=succeeded").content.decode()
        self.assertEqual(first.count("<tr data-job-id="), 50)
        self.assertIn("page 1 of 2", first)
        self.assertIn('href="?status=succeeded&amp;page=2"', first)
        second = self.client.get("/jobs/?status=succeeded&page=2").content.decode()
        self.assertEqual(second.count("<tr data-job-id="), 5)
        self.assertIn(f'data-job-id="{jobs[0].pk}"', second, "the oldest jobs are on the last page")


class JobPageTestCase(BaseTestCase):
    def setUp(self):
        self.client.force_login(self.alice)

    def test_the_header_says_how_many_iterations_ran_and_on_how_many_threads(self):
        started = timezone.now() - timedelta(minutes=2)
        job = make_job(
            created_at=started - timedelta(seconds=3),
            started_at=started,
            finished_at=started + timedelta(seconds=61),
        )
        page = self.client.get(f"/jobs/{job.pk}/").content.decode()
        summary = text_of(page, "job-summary")
        self.assertIn(f"at least 200 iterations each (timed {TIMES})", summary)
        self.assertIn("4 CPU threads", summary)
        times = text_of(page, "job-times", closing="dl")
        self.assertIn("waited 3.0 s", times)
        self.assertIn("Duration 61.0 s", times)
        params = text_of(page, "result-params")
        self.assertNotIn("max_iterations", page)
        self.assertIn("Batch sizes 1, 8", params)

    def test_a_partial_result_is_marked_and_failed_points_show_their_traceback(self):
        result = bench_result(batch_sizes=(1, 8), failed=(8,))
        result["runs"][1]["error_detail"] = (
            'Traceback (most recent call last):\n  File "model.py", line 3\nValueError: boom'
        )
        job = make_job(result=result)
        page = self.client.get(f"/jobs/{job.pk}/").content.decode()
        self.assertIn("1 point failed", text_of(page, "partial-banner"))
        self.assertIn(
            '<pre class="error-text">Traceback (most recent call last):\n  File &quot;model.py&quot;, line 3\nValueError: boom</pre>',
            page,
        )
        self.assertIn('data-batch-size="1"', page, "the point measured before the failure is shown")

    def test_a_cancelled_sweep_shows_the_points_it_kept(self):
        result = bench_result(batch_sizes=(1,))
        result.update(partial=True, cancelled=True)
        job = make_job(
            status=JobStatus.CANCELLED,
            error="cancelled by alice",
            params={"batch_sizes": [1, 8, 32], "iterations": 200},
            result=result,
        )
        page = self.client.get(f"/jobs/{job.pk}/").content.decode()
        self.assertIn(
            "cancelled (cancelled by alice) after 1 of 3 batch sizes", text_of(page, "partial-banner")
        )
        self.assertIn('id="result-table"', page)

    def test_cancel_asks_for_confirmation(self):
        job = make_job(status=JobStatus.RUNNING, result=None)
        page = self.client.get(f"/jobs/{job.pk}/").content.decode()
        self.assertIn(f'data-confirm="Cancel job #{job.pk}? Batch sizes already measured are kept', page)

    def test_run_again_opens_the_form_filled_in_from_the_job(self):
        job = make_job(
            model_name="StudentModel",
            target_node="gpu-node-1",
            params={
                "batch_sizes": [2, 16],
                "iterations": 321,
                "device": "cpu",
                "precision": "bf16",
                "threads": 3,
                "time_budget_s": 7.5,
                "concurrency": [1, 4],
            },
        )
        page = self.client.get(f"/jobs/{job.pk}/").content.decode()
        self.assertIn(f'href="/benchmark/?from={job.pk}"', page)
        form = self.client.get(f"/benchmark/?from={job.pk}").content.decode()
        self.assertIn('<option value="StudentModel" selected>', form)
        self.assertIn('<option value="gpu-node-1|cpu" selected>', form)
        self.assertIn('<option value="bf16" selected>', form)
        for name, value in [
            ("batch_sizes", "2, 16"),
            ("iterations", "321"),
            ("threads", "3"),
            ("time_budget_s", "7.5"),
            ("concurrency", "1, 4"),
        ]:
            self.assertRegex(form, rf'name="{name}" value="{re.escape(value)}"')
        self.assertIn("Filled in from", form)

    def test_an_unknown_job_gets_a_friendly_page_in_the_site_frame(self):
        response = self.client.get("/jobs/999999/")
        self.assertEqual(response.status_code, 404)
        page = response.content.decode()
        self.assertIn("Job #999999 not found", page)
        self.assertIn('class="topbar"', page, "perfmon's header and navigation")
        self.assertIn('href="/jobs/"', page)
        self.assertEqual(self.client.post("/jobs/999999/cancel/").status_code, 404)
        download = self.client.get("/jobs/999999/result.json")
        self.assertEqual((download.status_code, download.json()), (404, {"error": "job 999999 not found"}))
        self.assertContains(
            self.client.get("/jobs/999999/result.csv"), "job 999999 not found", status_code=404
        )


class AdminJobPageTestCase(BaseTestCase):
    def test_the_admin_shows_a_summary_not_the_raw_times(self):
        admin = get_user_model().objects.create_superuser("root", password="pw-root-123")
        self.client.force_login(admin)
        job = make_job()
        response = self.client.get(f"/admin/dashboard/job/{job.pk}/change/")
        self.assertEqual(response.status_code, 200)
        page = response.content.decode()
        self.assertNotIn("times_ms", page)
        self.assertNotIn("0.500001", page, "no raw latency")
        self.assertIn("<th>p50 ms</th>", page)
        self.assertIn(f'href="/jobs/{job.pk}/result.json"', page)
        self.assertEqual(self.client.get("/admin/dashboard/job/").status_code, 200)
