"""Where a deployment's latency comes from besides ingest: probes (scheduled by beat, sent to the
node's device queue, skipped while a job holds the device), scrapes, and the verdict of a
promotion's verification window."""

from __future__ import annotations

import base64
import http.server
import json
import threading
from datetime import timedelta
from unittest import mock

import numpy as np
import redis
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from dashboard.deployments import store
from dashboard.deployments.series import latency_metric
from dashboard.deployments.stats import recent
from dashboard.deployments.verification import verify_due
from dashboard.models import Deployment, DeploymentChange, Job, JobStatus, VerificationVerdict
from dashboard.models.history import HOST_DEVICE
from tests.dashboard.test_deployments_api import DeploymentApiTestCase
from tests.engine.test_scrape import FIXTURES, serving
from workers.tasks.deployments import probe_deployment, scrape_one


class SourcesTestCase(DeploymentApiTestCase):
    def setUp(self):
        super().setUp()
        self.create(model="digits@1", probe_interval_s=30)
        self.deployment = Deployment.objects.get()

    def write(self, stat: str, ts: list[float], values: list[float]) -> None:
        key = (self.deployment.node_name, latency_metric(self.deployment.name, stat), HOST_DEVICE)
        store.write({key: (np.array(ts), np.array(values))})


class TestProbeSchedule(SourcesTestCase):
    def test_due_deployments_get_one_probe_on_their_device_queue(self):
        from dashboard.deployments.probes import send_due_probes

        # The real broker: the probe is a message on the node's device queue (a Redis list).
        broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        queue = "node.gpu-node-1.cpu"
        broker.delete(queue)
        self.addCleanup(broker.delete, queue)
        now = timezone.now()
        with self.captureOnCommitCallbacks(execute=True):
            self.assertEqual(send_due_probes(now), ["digits-prod"])
            self.assertEqual(send_due_probes(now + timedelta(seconds=10)), [])  # not due again yet
        (message,) = [json.loads(raw) for raw in broker.lrange(queue, 0, -1)]
        self.assertEqual(message["headers"]["task"], "perfmon.probe_deployment")
        self.assertEqual(json.loads(base64.b64decode(message["body"]))[0], [self.deployment.pk])
        with self.captureOnCommitCallbacks(execute=True):
            self.assertEqual(send_due_probes(now + timedelta(seconds=31)), ["digits-prod"])
        self.assertEqual(broker.llen(queue), 2)

    def test_a_probe_records_p50_p95_p99_and_the_endpoint_round_trip(self):
        Deployment.objects.filter(pk=self.deployment.pk).update(endpoint_url="http://127.0.0.1:1/x")
        with serving("torchserve_1.txt") as server:
            Deployment.objects.filter(pk=self.deployment.pk).update(endpoint_url=server.url)
            measured = {"p50": 4.0, "p95": 5.0, "p99": 6.0, "mean": 4.2}
            with (
                mock.patch("workers.tasks.jobs._load_model", return_value=(object(), object())),
                mock.patch("workers.probe.measure", return_value=measured) as measure,
                mock.patch("dashboard.deployments.probes.publish_observations") as publish,
            ):
                self.assertEqual(probe_deployment(self.deployment.pk), "ok")
        self.assertEqual(measure.call_args.args[2]["batch_size"], 32)
        stats = recent(Deployment.objects.get())
        self.assertEqual(stats["p95"]["last_ms"], 5.0)
        self.assertIn("e2e_p50", stats)
        self.assertEqual(len(publish.call_args.args[0]), 7)
        self.assertEqual(Deployment.objects.get().probe_state["status"], "ok")

    def test_a_probe_never_runs_beside_a_job_on_its_device(self):
        job = Job.objects.create(
            kind="benchmark",
            model_name="digits@1",
            params={"device": "cpu"},
            status=JobStatus.RUNNING,
            node_name="gpu-node-1",
        )
        with mock.patch("workers.probe.measure") as measure:
            result = probe_deployment(self.deployment.pk)
        measure.assert_not_called()
        self.assertIn(f"benchmark job #{job.pk} holds cpu", result)
        state = Deployment.objects.get().probe_state
        self.assertEqual(state["status"], "skipped")
        self.assertIn(f"#{job.pk}", state["reason"])


class TestScrape(SourcesTestCase):
    def test_two_scrapes_store_the_intervals_latency_and_a_reset_stores_nothing(self):
        with serving("triton_1.txt", "triton_2.txt", "triton_3_restart.txt") as server:
            config = {"url": server.url, "format": "triton", "model": "resnet"}
            Deployment.objects.filter(pk=self.deployment.pk).update(scrape=config)
            for expected in ["first scrape", "ok", "counter reset (the server restarted)"]:
                with mock.patch("dashboard.deployments.probes.publish_observations"):
                    self.assertEqual(scrape_one(Deployment.objects.get()), expected)
        stats = recent(Deployment.objects.get())
        self.assertEqual(
            {k: v["count"] for k, v in stats.items()}, {"mean": 1, "queue_mean": 1, "compute_mean": 1}
        )
        self.assertEqual(stats["mean"]["last_ms"], 15.0)
        self.assertEqual(
            Deployment.objects.get().scrape_state["skipped"], "counter reset (the server restarted)"
        )

    def test_one_broken_scrape_config_does_not_stop_the_others(self):
        from workers.tasks.deployments import scrape_deployments

        self.create(name="other", model="digits@1", probe_interval_s=30)
        Deployment.objects.filter(name="digits-prod").update(scrape={"format": "triton"})  # no url
        with serving("triton_1.txt") as server:
            Deployment.objects.filter(name="other").update(scrape={"url": server.url, "format": "triton"})
            done = scrape_deployments()
        self.assertEqual(done["other"], "first scrape")
        self.assertTrue(done["digits-prod"].startswith("error"))
        self.assertIn("KeyError", Deployment.objects.get(name="digits-prod").scrape_state["error"])

    def test_endpoints_are_read_at_once_so_a_hanging_one_holds_up_no_other(self):
        from workers.tasks.deployments import scrape_deployments

        in_flight, most, lock, release = 0, 0, threading.Lock(), threading.Event()

        class Slow(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the stdlib's name)
                nonlocal in_flight, most
                with lock:
                    in_flight += 1
                    most = max(most, in_flight)
                    if in_flight == 3:
                        release.set()  # all three are being read at the same time
                release.wait(30)
                body = (FIXTURES / "triton_1.txt").read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                with lock:
                    in_flight -= 1

            def log_message(self, *args):
                pass

        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        try:
            url = f"http://127.0.0.1:{httpd.server_address[1]}/metrics"
            for name in ("a", "b"):
                self.create(name=name, model="digits@1", probe_interval_s=30)
            Deployment.objects.update(scrape={"url": url, "format": "triton"})
            with mock.patch("dashboard.deployments.probes.publish_observations"):
                done = scrape_deployments()
        finally:
            httpd.shutdown()
            httpd.server_close()
        self.assertEqual(most, 3)  # read one after another, the first would have waited 30 s alone
        self.assertEqual(done, {"digits-prod": "first scrape", "a": "first scrape", "b": "first scrape"})

    def test_due_scrapes_are_claimed_once(self):
        from dashboard.deployments.probes import due_scrapes

        Deployment.objects.filter(pk=self.deployment.pk).update(
            scrape={"url": "http://h/m", "format": "vllm"}
        )
        now = timezone.now()
        self.assertEqual([d.name for d in due_scrapes(now)], ["digits-prod"])
        self.assertEqual(due_scrapes(now + timedelta(seconds=5)), [])


@override_settings(DEPLOY_VERIFY_WINDOW_S=600)
class TestVerification(SourcesTestCase):
    def promote_at(self, when):
        change = self.post("/api/deployments/digits-prod/promote", {"version": "digits@2"}).json()
        window = timedelta(seconds=600)
        DeploymentChange.objects.filter(pk=change["id"]).update(at=when, verify_until=when + window)
        return DeploymentChange.objects.get(pk=change["id"])

    def test_latency_that_fell_is_improved(self):
        at = timezone.now() - timedelta(seconds=700)
        change = self.promote_at(at)
        t0 = at.timestamp()
        before = [40.0, 44.0, 41.0, 43.0, 42.0, 42.0]
        during = [20.0, 22.0, 21.0, 20.5, 21.5, 21.0]
        self.write(
            "p50",
            [t0 - 300 + 10 * i for i in range(6)] + [t0 + 100 + 10 * i for i in range(6)],
            before + during,
        )
        self.assertEqual(verify_due(), 1)
        change.refresh_from_db()
        self.assertEqual(change.verdict, VerificationVerdict.IMPROVED)
        self.assertEqual(change.verdict_detail["stat"], "p50")
        self.assertEqual(change.verdict_detail["before_mean_ms"], 42.0)
        self.assertEqual(change.verdict_detail["during_mean_ms"], 21.0)
        self.assertLess(change.verdict_detail["p_value"], 0.05)
        self.assertEqual(verify_due(), 0)  # judged once

    def test_samples_that_did_not_fall_are_not_improved(self):
        at = timezone.now() - timedelta(seconds=700)
        change = self.promote_at(at)
        t0 = at.timestamp()
        values = [30.0, 31.0, 29.0, 30.5, 30.0] + [29.5, 30.5, 29.0, 30.0, 29.5]  # under 5% better
        self.write("sample", [t0 - 60 + i for i in range(5)] + [t0 + 60 + i for i in range(5)], values)
        verify_due()
        change.refresh_from_db()
        self.assertEqual((change.verdict, change.verdict_detail["stat"]), ("not_improved", "sample"))
        self.assertEqual(change.verdict_detail["reason"], "not lower by the margin")

    def test_a_drop_inside_the_noise_is_not_an_improvement(self):
        at = timezone.now() - timedelta(seconds=700)
        change = self.promote_at(at)
        t0 = at.timestamp()
        # The mean falls 20%, all of it from one slow probe before the promotion.
        before = [20.0, 21.0, 19.0, 20.5, 19.5, 60.0]
        during = [20.0, 21.0, 19.5, 20.5, 22.0, 20.5]
        self.write(
            "p50",
            [t0 - 300 + 10 * i for i in range(6)] + [t0 + 100 + 10 * i for i in range(6)],
            before + during,
        )
        verify_due()
        change.refresh_from_db()
        self.assertEqual(change.verdict, VerificationVerdict.NOT_IMPROVED)
        self.assertLess(change.verdict_detail["change_pct"], -5.0)
        self.assertGreater(change.verdict_detail["p_value"], 0.05)
        self.assertIn("within the noise", change.verdict_detail["reason"])

    def test_one_probe_before_the_promotion_is_too_little_to_judge(self):
        at = timezone.now() - timedelta(seconds=700)
        change = self.promote_at(at)
        t0 = at.timestamp()
        self.write("p50", [t0 - 30] + [t0 + 100 + 10 * i for i in range(12)], [80.0] + [20.0] * 12)
        verify_due()
        change.refresh_from_db()
        self.assertEqual(change.verdict, VerificationVerdict.NO_DATA)
        self.assertIn("p50 1 before and 12 during", change.verdict_detail["reason"])
        self.client.force_login(self.alice)
        page = self.client.get(f"/deployments/{self.deployment.name}/").content.decode()
        self.assertIn("too few latency values to judge", page)

    def test_no_data_and_a_window_still_open(self):
        open_change = self.promote_at(timezone.now() - timedelta(seconds=60))
        self.assertEqual(verify_due(), 0)
        open_change.refresh_from_db()
        self.assertEqual(open_change.verdict, VerificationVerdict.WATCHING)
        self.assertEqual(verify_due(timezone.now() + timedelta(seconds=600)), 1)
        open_change.refresh_from_db()
        self.assertEqual(open_change.verdict, VerificationVerdict.NO_DATA)
