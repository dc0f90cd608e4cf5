"""GET /api/jobs: summaries without raw times, paging with a total count, and filters."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from dashboard.models import Job, JobStatus
from tests.dashboard.base import BaseTestCase

TIMES = 10_000


def bench_result(batch_sizes=(1, 8), times=TIMES, failed=()):
    """A stored result as the harness writes it, ``times`` raw latencies per batch size."""
    runs = []
    for b in batch_sizes:
        if b in failed:
            runs.append(
                {"batch_size": b, "error": f"ValueError at batch {b}: boom", "iterations": 0, "times_ms": []}
            )
            continue
        runs.append(
            {
                "batch_size": b,
                "latency_ms": {
                    "p50": 0.5 * b,
                    "p90": 0.6 * b,
                    "p95": 0.7 * b,
                    "p99": 0.9 * b,
                    "mean": 0.55 * b,
                },
                "throughput_per_s": 2000.0 * b**0.5,
                "iterations": times,
                "stop_reason": "max_iterations",
                "unstable": False,
                "error": None,
                "times_ms": [0.5 * b + i * 1e-6 for i in range(times)],
            }
        )
    return {
        "partial": bool(failed),
        "runs": runs,
        "concurrency_runs": [],
        "env": {"threads": 4},
        "spec": {"threads": 4},
    }


def make_job(**fields):
    defaults = {
        "kind": "benchmark",
        "model_name": "SimpleModel",
        "params": {"batch_sizes": [1, 8], "iterations": 200},
        "status": JobStatus.SUCCEEDED,
        "result": bench_result(),
    }
    return Job.objects.create(**{**defaults, **fields})


class ListSummaryTestCase(BaseTestCase):
    def test_the_list_carries_summaries_and_no_raw_times(self):
        jobs = [make_job() for _ in range(6)]
        response = self.client.get("/api/jobs", **self.bearer())
        self.assertEqual(response.status_code, 200)
        self.assertNotIn(b"times_ms", response.content, "60,000 raw floats stay out of the list")
        body = response.json()
        self.assertEqual([job["id"] for job in body], [job.pk for job in reversed(jobs)])
        run = body[0]["result"]["runs"][1]
        self.assertEqual(
            {
                key: run[key]
                for key in ("batch_size", "p50_ms", "p99_ms", "iterations", "error", "stop_reason")
            },
            {
                "batch_size": 8,
                "p50_ms": 4.0,
                "p99_ms": 7.2,
                "iterations": TIMES,
                "error": None,
                "stop_reason": "max_iterations",
            },
        )
        self.assertGreater(run["throughput_per_s"], 0)
        self.assertEqual(body[0]["result"]["headline"]["p50_ms"], 0.5, "p50 at the smallest batch size")
        self.assertNotIn("log", body[0])

    def test_the_jobs_own_endpoint_keeps_the_raw_times_unless_asked_not_to(self):
        job = make_job()
        full = self.client.get(f"/api/jobs/{job.pk}", **self.bearer()).json()
        self.assertEqual(len(full["result"]["runs"][0]["times_ms"]), TIMES)
        lean = self.client.get(f"/api/jobs/{job.pk}?raw=0", **self.bearer())
        self.assertNotIn(b"times_ms", lean.content)
        self.assertEqual(lean.json()["result"]["runs"][0]["latency_ms"]["p50"], 0.5)
        bad = self.client.get(f"/api/jobs/{job.pk}?raw=yes", **self.bearer())
        # Documented as the enum "0" | "1" (schemathesis sent "0/0" when it was a free string).
        self.assertEqual(bad.status_code, 400)
        self.assertIn("raw", bad.json()["error"])

    def test_a_partial_result_is_marked_in_the_list(self):
        make_job(result=bench_result(failed=(8,)))
        job = self.client.get("/api/jobs", **self.bearer()).json()[0]
        self.assertTrue(job["partial"])
        self.assertEqual(job["result"]["runs"][1]["error"], "ValueError at batch 8: boom")


class PagingTestCase(BaseTestCase):
    def test_limit_and_offset_page_through_with_a_total_count(self):
        ids = [make_job(result=None, status=JobStatus.QUEUED).pk for _ in range(7)][::-1]
        first = self.client.get("/api/jobs?limit=3", **self.bearer())
        self.assertEqual([job["id"] for job in first.json()], ids[:3])
        self.assertEqual(first["X-Total-Count"], "7")
        third = self.client.get("/api/jobs?limit=3&offset=6", **self.bearer())
        self.assertEqual([job["id"] for job in third.json()], ids[6:])

    def test_bad_paging_is_refused_with_the_reason(self):
        for query, message in [
            ("limit=0", "limit 0 is too small: at least 1"),
            ("limit=501", "limit 501 is too large: at most 500"),
            ("limit=ten", "limit must be a whole number, not 'ten'"),
            ("offset=-1", "offset -1 is too small: at least 0"),
        ]:
            response = self.client.get(f"/api/jobs?{query}", **self.bearer())
            self.assertEqual((response.status_code, response.json()), (400, {"error": message}), query)


class FilterTestCase(BaseTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        old = timezone.now() - timedelta(days=3)
        cls.simple_here = make_job(node_name="gpu-node-1")
        cls.failed = make_job(status=JobStatus.FAILED, result=None, node_name="other")
        cls.registered_1 = make_job(model_name="resnet@1", node_name="other")
        cls.registered_2 = make_job(model_name="resnet@2", target_node="gpu-node-1", status=JobStatus.QUEUED)
        cls.old = make_job(created_at=old)

    def ids(self, query):
        response = self.client.get(f"/api/jobs?{query}", **self.bearer())
        self.assertEqual(response.status_code, 200, response.content)
        return {job["id"] for job in response.json()}

    def test_each_filter_narrows_the_list(self):
        self.assertEqual(self.ids("status=failed"), {self.failed.pk})
        self.assertEqual(self.ids("kind=benchmark&status=queued"), {self.registered_2.pk})
        self.assertEqual(
            self.ids("model=resnet"), {self.registered_1.pk, self.registered_2.pk}, "every version"
        )
        self.assertEqual(self.ids("model=resnet@2"), {self.registered_2.pk})
        self.assertEqual(
            self.ids("node=gpu-node-1"), {self.simple_here.pk, self.registered_2.pk}, "ran or sent"
        )
        since = (timezone.now() - timedelta(days=1)).date().isoformat()
        self.assertNotIn(self.old.pk, self.ids(f"since={since}"))
        self.assertIn(self.old.pk, self.ids("since=2000-01-01T00:00:00Z"))

    def test_the_total_count_follows_the_filters(self):
        response = self.client.get("/api/jobs?model=resnet&limit=1", **self.bearer())
        self.assertEqual((len(response.json()), response["X-Total-Count"]), (1, "2"))

    def test_bad_filter_values_are_refused_with_the_reason(self):
        for query, fragment in [
            ("status=done", "unknown status 'done'; statuses: queued, running, succeeded, failed, cancelled"),
            ("kind=training", "unknown kind 'training'"),
            ("since=yesterday", "since must be an ISO 8601 date or time"),
        ]:
            response = self.client.get(f"/api/jobs?{query}", **self.bearer())
            self.assertEqual(response.status_code, 400, query)
            self.assertIn(fragment, response.json()["error"])
