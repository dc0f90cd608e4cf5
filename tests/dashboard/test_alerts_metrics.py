"""/metrics exports ALERTS and ALERTS_FOR_STATE for pending and firing alerts, as Prometheus does."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from dashboard.models import Alert, Rule
from tests.dashboard import test_prometheus


class AlertsMetricsTestCase(test_prometheus.MetricsTestCase):
    def test_pending_and_firing_alerts_are_series_and_closed_ones_are_not(self):
        rule = Rule.objects.create(name="hot gpu", target={}, threshold=80, severity="critical")
        since = timezone.now() - timedelta(minutes=5)
        labels = {
            "alertname": "hot gpu",
            "severity": "critical",
            "node": "gpu-a",
            "gpu": "0",
            "team.name": "ml",
        }
        Alert.objects.create(rule=rule, fingerprint="a", labels=labels, state="firing", pending_since=since)
        Alert.objects.create(
            rule=rule, fingerprint="b", labels={**labels, "gpu": "1"}, state="pending", pending_since=since
        )
        Alert.objects.create(
            rule=rule, fingerprint="c", labels={**labels, "gpu": "2"}, state="resolved", is_open=False
        )
        families = self.scrape()
        firing = self.one(families, "ALERTS", alertstate="firing")
        self.assertEqual(firing.value, 1)
        self.assertEqual(
            firing.labels,
            {
                "alertname": "hot gpu",
                "alertstate": "firing",
                "severity": "critical",
                "node": "gpu-a",
                "gpu": "0",
                "team_name": "ml",
            },
        )
        self.one(families, "ALERTS", alertstate="pending", gpu="1")
        self.assertEqual(self.series(families, "ALERTS", gpu="2"), [])
        for_state = self.one(families, "ALERTS_FOR_STATE", gpu="0")
        self.assertAlmostEqual(for_state.value, since.timestamp(), places=3)
