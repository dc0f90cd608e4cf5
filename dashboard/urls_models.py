"""Model registry pages (included in the "dashboard" namespace)."""

from __future__ import annotations

from django.urls import path

from dashboard import views_models

urlpatterns = [
    path("models/", views_models.models_list, name="models"),
    path("models/<int:model_id>/", views_models.models_detail, name="models-detail"),
    path("models/<int:model_id>/delete/", views_models.models_delete, name="models-delete"),
    path(
        "models/<int:model_id>/versions/<int:number>/delete/",
        views_models.models_delete_version,
        name="models-delete-version",
    ),
]
