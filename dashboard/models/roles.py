"""Who may do what: every user has one role; superusers are always admins.

A user without a UserRole row is a viewer: a new account can look but not change anything
until an admin says otherwise (the admin's user page, or `perfmon manage`)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Role(models.TextChoices):
    VIEWER = "viewer", "viewer: reads everything, changes nothing"
    OPERATOR = "operator", "operator: runs, cancels and uploads; the shared fleet's daily work"
    ADMIN = "admin", "admin: also users, everyone's tokens and settings"


# Higher can do everything lower can; compare roles through this, never by their names.
ROLE_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


class UserRole(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="perfmon_role"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)

    def __str__(self) -> str:
        return f"{self.user}: {self.role}"
