from django.urls import include, path

from dashboard import views, views_optimize

app_name = "dashboard"

urlpatterns = [
    path("", views.home, name="home"),
    path("benchmark/", views.benchmark, name="benchmark"),
    path("optimize/", views_optimize.optimize, name="optimize"),
    path("optimize/datasets/", views_optimize.upload_dataset, name="optimize-dataset-upload"),
    path("jobs/", views.jobs, name="jobs"),
    path("jobs/<int:job_id>/", views.job_detail, name="job"),
    path("jobs/<int:job_id>/result/", views.job_result_fragment, name="job-result"),
    path("jobs/<int:job_id>/cancel/", views.cancel_job, name="job-cancel"),
    # Each area keeps its own URL module so it can grow without touching the others.
    path("", include("dashboard.urls_nodes")),
    path("", include("dashboard.urls_models")),
    path("", include("dashboard.urls_results")),
    path("", include("dashboard.urls_tokens")),
    path("", include("dashboard.urls_channels")),
    path("", include("dashboard.urls_deployments")),
    path("", include("dashboard.urls_alert_detail")),
    path("", include("dashboard.urls_alerting")),
]
