"""Notification channel pages (included in the "dashboard" namespace)."""

from __future__ import annotations

from django.urls import path

from dashboard import views_channels

urlpatterns = [
    path("channels/", views_channels.channels, name="channels"),
    path("channels/<int:channel_id>/test/", views_channels.test_channel, name="channel-test"),
    path("channels/<int:channel_id>/toggle/", views_channels.toggle_channel, name="channel-toggle"),
]
