"""API tokens: only a SHA-256 of each token is stored.

A token carries a role, never more than its user's (checked when issued, and again on every use,
so demoting a user demotes their tokens), and an optional expiry. Revoking deletes the row."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from dashboard.models.roles import Role

TOKEN_PREFIX = "pm_"


def hash_token(raw: str) -> str:
    # A random 256-bit token needs no slow hash: SHA-256 of it cannot be brute-forced.
    return hashlib.sha256(raw.encode()).hexdigest()


class TokenRefused(Exception):
    """A bearer token that does not let its holder in; the message says why (shown in the 401)."""


class ApiToken(models.Model):
    """A bearer token for the REST API. Only its SHA-256 is stored; the token is shown once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    token_hash = models.CharField(max_length=64, unique=True)
    hint = models.CharField(max_length=16, help_text="first characters, to tell tokens apart")
    label = models.CharField(max_length=100, blank=True, default="", help_text="what the token is for")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    agent_node = models.CharField(
        max_length=200, blank=True, default="", help_text="set for the token of an agent node"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="empty: never expires")
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.hint}… ({self.user})"

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @classmethod
    def issue(
        cls,
        user,
        role: str = Role.VIEWER,
        *,
        expires_at=None,
        label: str = "",
        agent_node: str = "",
    ) -> tuple[ApiToken, str]:
        """A new token and its raw value (shown once). Callers check the role against the user's:
        dashboard.permissions.do_issue_token does."""
        raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(
            user=user,
            token_hash=hash_token(raw),
            hint=raw[:10],
            role=role,
            expires_at=expires_at,
            label=label[:100],
            agent_node=agent_node[:200],
        )
        return token, raw

    @classmethod
    def authenticate(cls, raw: str):
        """The active user a valid token belongs to, or None. The user carries the token's role
        (dashboard.permissions.role_of caps the user's role at it)."""
        try:
            token = cls.verify(raw)
        except TokenRefused:
            return None
        return token.acting_user()

    def acting_user(self):
        user = self.user
        user.perfmon_token_role = self.role  # read by dashboard.permissions.role_of
        return user

    @classmethod
    def verify(cls, raw: str) -> ApiToken:
        """The token (with its user) for a raw bearer value; raises TokenRefused saying why not."""
        # The user's role row comes in the same query: every token request checks the role.
        token = (
            cls.objects.select_related("user", "user__perfmon_role")
            .filter(token_hash=hash_token(raw))
            .first()
        )
        if token is None:
            raise TokenRefused("unknown or revoked token")
        if token.expired:
            raise TokenRefused(f"token {token.hint}… expired at {token.expires_at:%Y-%m-%d %H:%M} UTC")
        if not token.user.is_active:
            raise TokenRefused("the token's user is deactivated")
        # Recording every use would write on every request; once a minute is enough to audit.
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
            cls.objects.filter(pk=token.pk).update(last_used_at=now)
        return token
