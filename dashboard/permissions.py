"""Roles and the checks the named actions make: the one place that decides who may write what.

viewer    reads everything (pages, API, live feed) but changes nothing
operator  submits and cancels jobs (anyone's: operators run the shared fleet together), uploads
          models, adds versions to models they own
admin     everything, plus users' roles, everyone's tokens and agent tokens

A request made with an API token acts with the token's role, capped at its user's current role.
Actions call require(user, Role.X, "what") first; the refusal is PermissionDenied, which Django
turns into a 403 page and the API into a 403 {"error"}.
"""

from __future__ import annotations

import functools
import json

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied

from dashboard.models.roles import ROLE_RANK, Role, UserRole


class PermissionDenied(DjangoPermissionDenied):
    """A user whose role does not allow an action; the message names the action and the role needed."""


def user_role(user) -> Role:
    """The role an account has, whatever credentials it uses: superusers are admins; no row, viewer."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return Role.VIEWER
    if user.is_superuser:
        return Role.ADMIN
    fetched = getattr(getattr(user, "_state", None), "fields_cache", {})
    if "perfmon_role" in fetched:  # joined to the user already (ApiToken.verify): no query
        return Role(fetched["perfmon_role"].role) if fetched["perfmon_role"] else Role.VIEWER
    row = UserRole.objects.filter(user_id=user.pk).values_list("role", flat=True).first()
    return Role(row) if row else Role.VIEWER


def role_of(user) -> Role:
    """The role this request acts with: the user's, or less when it came with a lesser token."""
    role = user_role(user)
    token_role = getattr(user, "perfmon_token_role", None)
    if token_role and ROLE_RANK[Role(token_role)] < ROLE_RANK[role]:
        return Role(token_role)
    return role


def has_role(user, needed: Role) -> bool:
    return ROLE_RANK[role_of(user)] >= ROLE_RANK[needed]


def require(user, needed: Role, action: str) -> None:
    """Raise PermissionDenied unless the user (as this request acts) is at least `needed`."""
    if not has_role(user, needed):
        raise PermissionDenied(f"{action} needs the {needed.value} role; you act as {role_of(user).value}")


def can_see_command_lines(user) -> bool:
    """Host process command lines may carry paths and arguments a viewer need not see."""
    return has_role(user, Role.OPERATOR)


def grant(user, role: Role | str) -> None:
    """Set a user's role without a check: for `perfmon up`'s first admin, migrations and tests.
    Everything a person does goes through do_set_role."""
    UserRole.objects.update_or_create(user=user, defaults={"role": Role(role)})


def do_set_role(actor, user, role: Role | str) -> None:
    require(actor, Role.ADMIN, "changing a user's role")
    grant(user, role)


HIDDEN_COMMAND = "hidden: command lines are shown to operators and admins"


@functools.lru_cache(maxsize=64)
def redact_commands(text: str) -> str:
    """A live frame (JSON text) with every process's command line replaced, for viewers.

    Only frames that mention "command" are parsed, so the frames most watchers get pass untouched.
    Cached: every viewer of a node page gets the same frame, which is then redacted once per web
    process instead of parsed and encoded again for each of them."""
    if '"command"' not in text:
        return text

    def scrub(value):
        if isinstance(value, dict):
            return {k: (HIDDEN_COMMAND if k == "command" and v else scrub(v)) for k, v in value.items()}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return value

    return json.dumps(scrub(json.loads(text)), separators=(",", ":"))
