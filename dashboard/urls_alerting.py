"""Rule and alert pages (included in the "dashboard" namespace)."""

from __future__ import annotations

from django.urls import path

from dashboard import views_alerting

urlpatterns = [
    path("rules/", views_alerting.rules, name="rules"),
    path("rules/<int:rule_id>/", views_alerting.rule_detail, name="rule"),
    path("rules/<int:rule_id>/delete/", views_alerting.rule_delete, name="rule-delete"),
    path("alerts/", views_alerting.alerts, name="alerts"),
    path("alerts/<int:alert_id>/ack/", views_alerting.alert_ack, name="alert-ack"),
    path("alerts/<int:alert_id>/silence/", views_alerting.alert_silence, name="alert-silence"),
]
