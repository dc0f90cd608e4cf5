from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from dashboard.api import api
from dashboard.views import healthz
from dashboard.views_metrics import metrics

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("api/", api.urls),
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("metrics", metrics, name="prometheus-metrics"),
    path("", include("dashboard.urls")),
]

handler500 = "dashboard.views_errors.server_error"
