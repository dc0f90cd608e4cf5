"""Issue #10's whole loop on the real stack (`perfmon up`: Redis, Celery workers, beat, the
evaluator): ingest above a threshold -> pending -> firing -> a webhook (Alertmanager v4) received
by a real HTTP server on loopback -> an optimization job enqueued, linked to the alert, run on the
real worker -> the alert shows before/after -> promote -> samples back below the resolve threshold
-> resolved, and the receiver gets the resolved notification with its value. Then the alert's page
in Debian's chromium shows the before/after row and the promotion.

States, not timings: every wait is a poll with a generous deadline."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.e2e.stack import NODE_NAME, logged_in_page, trained

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
DEADLINE_S = 300

pytestmark = [pytest.mark.browser, pytest.mark.stack]


class Receiver:
    """A webhook receiver on loopback, in a thread: keeps every POST (headers and JSON body)."""

    def __init__(self) -> None:
        received: list[dict] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append({"headers": dict(self.headers), "body": json.loads(body or b"null")})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def with_status(self, status: str) -> list[dict]:
        return [r for r in self.received if (r["body"] or {}).get("status") == status]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    running = Receiver()
    yield running
    running.close()


def post_slowly(stack, path: str, body: dict, token: str) -> tuple[int, dict]:
    """A POST that may take minutes (creating a deployment registers the zoo model's original)."""
    request = urllib.request.Request(stack.url + path, data=json.dumps(body).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=DEADLINE_S) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def wait_for(what: str, check, stack, deadline_s: float = DEADLINE_S):
    """Polls ``check()`` until it returns something truthy; fails naming ``what`` and the stack log."""
    deadline = time.monotonic() + deadline_s
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"no {what} within {deadline_s} s\n{stack.log()[-4000:]}"
        time.sleep(1)


def ingest(stack, token: str, deployment: str, latencies_ms: list[float]) -> None:
    now = time.time()
    samples = [{"ts": now - len(latencies_ms) + i, "latency_ms": v} for i, v in enumerate(latencies_ms)]
    status, body = stack.post("/api/ingest/latency", {"deployment": deployment, "samples": samples}, token)
    assert status == 202, body


def test_a_slow_deployment_alerts_optimizes_itself_is_promoted_and_resolves(stack, browser, receiver):
    ARTIFACTS.mkdir(exist_ok=True)
    token = stack.cli("token", "admin").stdout.strip()
    status, channel = stack.post(
        "/api/channels",
        {"kind": "webhook", "name": "loop receiver", "url": receiver.url, "format": "alertmanager"},
        token,
    )
    assert status == 201, channel
    trained(stack, token, "SimpleModel")  # a deployment of a zoo MLP needs its trained weights
    status, deployment = post_slowly(
        stack,
        "/api/deployments",
        {
            "name": "loop-digits",
            "model": "SimpleModel",
            "node": NODE_NAME,
            "params": {
                "device": "cpu",
                "batch_size": 8,
                "precision": "fp32",
                "threads": 1,
                "runtime": "eager",
            },
            "probe_interval_s": 0,
            "objective_ms": 50,
        },
        token,
    )
    assert status == 201, deployment
    # No wait for the zoo original it registered to be validated: an alert firing meanwhile holds
    # its optimize action back until the version is ready (dashboard.alerting.actions).
    status, rule = stack.post(
        "/api/rules",
        {
            "name": "loop digits slow",
            "target": {"deployment": "loop-digits", "stat": "mean", "window": "last_5"},
            "op": ">",
            "threshold": 50,
            "resolve_threshold": 45,
            "for_s": 3,
            "keep_firing_for_s": 0,
            "repeat_interval_s": 3600,
            "no_data": "nodata",
            "severity": "warning",
            "channels": [channel["id"]],
            "actions": [{"kind": "optimize", "passes": [{"name": "quantize_dynamic"}]}],
            "auto_promote": False,
        },
        token,
    )
    assert status == 201, rule

    def alert_of_rule():
        status, alerts = stack.get(f"/api/alerts?rule={rule['id']}", token)
        assert status == 200, alerts
        return alerts[0] if alerts else None

    # Above the threshold, a sample a second as a service sends them: pending first (for_s holds
    # it), then firing. (Samples sent before the evaluator loaded the new rule only fill its
    # window; the rule is evaluated at the next sample.)
    states: list[str] = []

    def in_state(wanted: str):
        def check():
            ingest(stack, token, "loop-digits", [70.0])
            alert = alert_of_rule()
            if alert is not None and alert["state"] not in states:
                states.append(alert["state"])
            return alert if alert is not None and alert["state"] == wanted else None

        return check

    ingest(stack, token, "loop-digits", [70.0] * 4)
    pending = wait_for("open alert", lambda: in_state("pending")() or in_state("firing")(), stack)
    assert pending["deployment"] == "loop-digits"
    firing = in_state("firing")
    alert = wait_for("firing alert", firing, stack)
    status, detail = stack.get(f"/api/alerts/{alert['id']}", token)
    assert [e["to_state"] for e in detail["events"]][:2] == ["pending", "firing"], detail["events"]
    assert alert["value"] > 50

    # The receiver gets the firing notification, Alertmanager's webhook v4 with an idempotency key.
    fired = wait_for("firing webhook", lambda: receiver.with_status("firing"), stack)
    payload = fired[0]["body"]
    assert payload["version"] == "4" and payload["alerts"][0]["status"] == "firing", payload
    assert payload["commonLabels"]["alertname"] == "loop digits slow", payload
    assert fired[0]["headers"].get("Idempotency-Key"), fired[0]["headers"]

    # The rule's optimize action enqueued a job for the deployment, linked to the alert both ways.
    alert = wait_for("job linked to the alert", lambda: (a := alert_of_rule())["jobs"] and a, stack)
    job_id = alert["jobs"][0]

    def finished_job():
        status, job = stack.get(f"/api/jobs/{job_id}", token)
        assert status == 200, job
        assert job["status"] not in ("failed", "cancelled"), job
        return job if job["status"] == "succeeded" else None

    job = wait_for("finished optimize job", finished_job, stack, deadline_s=2 * DEADLINE_S)
    assert job["kind"] == "optimize", job
    assert (job["alert"], job["deployment"]) == (alert["id"], "loop-digits"), job
    assert alert_of_rule()["deliveries"], "the firing delivery is listed on the alert"

    def measured_action():
        status, actions = stack.get(f"/api/alerts/{alert['id']}/actions", token)
        assert status == 200, actions
        done = [a for a in actions if a["job"] == job_id and (a["outcome"] or {}).get("after")]
        return done[0] if done else None

    action = wait_for("before/after on the alert", measured_action, stack)
    outcome = action["outcome"]
    assert outcome["before"]["p50_ms"] > 0 and outcome["after"]["p50_ms"] > 0, outcome
    produced = outcome["version"]["label"]

    # The alert's page shows the before/after row and the promote button.
    with logged_in_page(stack, browser) as page:
        page.goto(f"{stack.url}/alerts/{alert['id']}/")
        row = page.locator(f"#action-{action['id']}")
        row.wait_for()
        assert "→" in row.inner_text() and f"#{job_id}" in row.inner_text()
        assert page.locator("#promote").is_visible()
        page.screenshot(path=str(ARTIFACTS / "alert-loop-before-promote.png"), full_page=True)
        assert page.script_errors == []

    # Promote: the deployment's active version is now the optimized one.
    status, change = stack.post(f"/api/alerts/{alert['id']}/promote", {}, token)
    assert status == 200, change
    assert change["to_version"] == produced, change
    status, deployment = stack.get("/api/deployments/loop-digits", token)
    assert deployment["active_version"]["label"] == produced, deployment

    # Back below the resolve threshold: resolved, and the receiver gets the value at resolve time.
    def resolved():
        ingest(stack, token, "loop-digits", [20.0])
        status, one = stack.get(f"/api/alerts/{alert['id']}", token)
        return one if one["state"] == "resolved" else None

    closed = wait_for("resolved alert", resolved, stack)
    assert closed["value"] < 45 and closed["resolved_at"], closed
    sent = wait_for("resolved webhook", lambda: receiver.with_status("resolved"), stack)
    resolved_alert = sent[0]["body"]["alerts"][0]
    assert resolved_alert["status"] == "resolved" and resolved_alert["endsAt"], resolved_alert
    assert float(resolved_alert["annotations"]["value"]) == pytest.approx(closed["value"], rel=1e-5)
    assert sent[0]["headers"].get("Idempotency-Key") != fired[0]["headers"].get("Idempotency-Key")
    # One firing notification, not one per sample.
    assert len(receiver.with_status("firing")) == 1
