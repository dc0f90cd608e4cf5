"""One alert's page and its one-click answers (included in the "dashboard" namespace). The alerts
list lives in the rules work's URL module."""

from __future__ import annotations

from django.urls import path

from dashboard import views_alert_detail as views

urlpatterns = [
    path("alerts/<int:alert_id>/", views.alert_detail, name="alert"),
    path("alerts/<int:alert_id>/approve/", views.alert_approve, name="alert-approve"),
    path("alerts/<int:alert_id>/promote/", views.alert_promote, name="alert-promote"),
    path("alerts/<int:alert_id>/rollback/", views.alert_rollback, name="alert-rollback"),
]
