"""Deployment pages (included in the "dashboard" namespace)."""

from __future__ import annotations

from django.urls import path

from dashboard import views_deployments

urlpatterns = [
    path("deployments/", views_deployments.deployments_list, name="deployments"),
    path("deployments/<slug:name>/", views_deployments.deployment_detail, name="deployment"),
    path("deployments/<slug:name>/promote/", views_deployments.deployment_promote, name="deployment-promote"),
    path(
        "deployments/<slug:name>/rollback/", views_deployments.deployment_rollback, name="deployment-rollback"
    ),
]
