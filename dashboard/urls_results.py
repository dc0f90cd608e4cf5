"""Job results: JSON and CSV exports, and the comparison of jobs."""

from __future__ import annotations

from django.urls import path

from dashboard import views_results

urlpatterns = [
    path("jobs/<int:job_id>/result.json", views_results.job_result_json, name="job-result-json"),
    path("jobs/<int:job_id>/result.csv", views_results.job_result_csv, name="job-result-csv"),
    path("jobs/compare/", views_results.compare, name="jobs-compare"),
]
