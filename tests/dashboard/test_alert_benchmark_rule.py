"""Benchmark regressions as a rule type: a "regression" verdict fires the rule, the next clean
benchmark of that model on that node resolves it."""

from __future__ import annotations

import time

import redis
from django.conf import settings

from dashboard.alerting import dispatch, feed
from dashboard.alerting.evaluator import Evaluator
from dashboard.models import Alert, Rule
from dashboard.results.regressions import record_regressions
from tests.dashboard import test_results_regressions
from tests.dashboard.base import BaseTestCase


class BenchmarkRuleTestCase(BaseTestCase):
    minute = 0
    bench = test_results_regressions.RegressionTestCase.bench

    def setUp(self):
        self.redis = redis.Redis.from_url(settings.REDIS_URL)
        self.redis.delete(feed.STREAM)
        self.addCleanup(self.redis.delete, feed.STREAM)
        self.sent: list[str] = []
        original = dispatch.alert_changed
        dispatch.alert_changed = lambda alert, event: self.sent.append(event.to_state)
        self.addCleanup(setattr, dispatch, "alert_changed", original)

    def evaluate(self, evaluator: Evaluator) -> None:
        evaluator.read_once("0-0", block_ms=10)
        self.redis.delete(feed.STREAM)

    def test_a_regression_verdict_fires_and_a_clean_run_resolves(self):
        rule = Rule.objects.create(
            name="digits slower", target={"benchmark": "regression"}, op=">=", threshold=1, for_s=0
        )
        evaluator = Evaluator(clock=time.time)
        evaluator.load()
        self.bench({8: 2.0})
        record_regressions(self.bench({8: 2.3}))
        self.evaluate(evaluator)
        alert = Alert.objects.get(rule=rule)
        self.assertEqual(alert.state, "firing")
        self.assertEqual(alert.labels["model"], "SimpleModel")
        self.assertEqual(alert.labels["node"], "gpu-node-1")
        record_regressions(self.bench({8: 2.31}))  # no change against the last: clean
        self.evaluate(evaluator)
        alert.refresh_from_db()
        self.assertEqual(alert.state, "resolved")
        self.assertEqual(self.sent, ["firing", "resolved"])
