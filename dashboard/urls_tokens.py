"""API token pages (included in the "dashboard" namespace)."""

from __future__ import annotations

from django.urls import path

from dashboard import views_tokens

urlpatterns = [
    path("tokens/", views_tokens.tokens, name="tokens"),
    path("tokens/agent/", views_tokens.agent_token, name="token-agent"),
    path("tokens/<int:token_id>/revoke/", views_tokens.revoke_token, name="token-revoke"),
]
