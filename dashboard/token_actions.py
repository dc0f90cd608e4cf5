"""The named writes for API tokens: issue, revoke, and the tokens of agent nodes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from dashboard.models import ROLE_RANK, ApiToken, Role
from dashboard.permissions import PermissionDenied, require, role_of, user_role

AGENT_USER_PREFIX = "agent@"
_DURATION = re.compile(r"(\d+)\s*([hdw])")


class BadTokenRequest(ValueError):
    """A token request we refuse as malformed (an unknown role, an expiry in the past)."""


def parse_expiry(raw: str | None, now: datetime | None = None) -> datetime | None:
    """'30d', '12h', '2w' (from now) or an ISO date/time (UTC when it has no zone); '' or 'never': None."""
    raw = (raw or "").strip().lower()
    if raw in ("", "never"):
        return None
    now = now or timezone.now()
    match = _DURATION.fullmatch(raw)
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        if amount <= 0:
            raise BadTokenRequest(f"expiry {raw!r} must be in the future")
        unit_name = {"h": "hours", "d": "days", "w": "weeks"}[unit]
        return now + timedelta(**{unit_name: amount})
    try:
        when = datetime.fromisoformat(raw.upper())
    except ValueError:
        raise BadTokenRequest(
            f"expiry {raw!r}: give a duration like 30d, 12h, 2w, a date like 2027-01-31, or never"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if when <= now:
        raise BadTokenRequest(f"expiry {raw!r} is not in the future")
    return when


def _role(raw: str | Role | None, default: Role) -> Role:
    if raw in (None, ""):
        return default
    try:
        return Role(raw)
    except ValueError:
        names = ", ".join(r.value for r in Role)
        raise BadTokenRequest(f"unknown role {raw!r}: one of {names}") from None


def do_issue_token(
    actor, *, role: str | Role | None = None, expires_at: datetime | None = None, label: str = ""
) -> tuple[ApiToken, str]:
    """A token for the actor itself, with at most the actor's role (default: exactly it)."""
    if not getattr(actor, "is_authenticated", False):
        raise PermissionDenied("issuing a token needs a logged-in user")
    mine = role_of(actor)
    wanted = _role(role, mine)
    if ROLE_RANK[wanted] > ROLE_RANK[mine]:
        raise PermissionDenied(
            f"a token's role cannot exceed yours: you are {mine.value}, not {wanted.value}"
        )
    if expires_at is not None and expires_at <= timezone.now():
        raise BadTokenRequest("the expiry is not in the future")
    return ApiToken.issue(actor, wanted, expires_at=expires_at, label=label)


def do_issue_agent_token(actor, node: str, *, expires_at: datetime | None = None) -> tuple[ApiToken, str]:
    """A token of its own for an agent node, owned by a service account `agent@<node>` that cannot
    log in, so it shows apart from people's tokens and is revoked without touching theirs.

    Viewer role: an agent reports through Redis and the database, not the API; what it may read
    over the API is all it needs."""
    require(actor, Role.ADMIN, "issuing an agent token")
    node = (node or "").strip()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,140}", node):
        raise BadTokenRequest(f"node name {node!r}: letters, digits, '.', '_' or '-'")
    users = get_user_model()
    agent, created = users.objects.get_or_create(username=AGENT_USER_PREFIX + node)
    if created:
        agent.set_unusable_password()
        agent.save(update_fields=["password"])
    return ApiToken.issue(agent, Role.VIEWER, expires_at=expires_at, label=f"agent {node}", agent_node=node)


def visible_tokens(actor):
    """The tokens the actor may see on the tokens page: their own; an admin sees every token."""
    tokens = ApiToken.objects.select_related("user")
    if user_role(actor) == Role.ADMIN and role_of(actor) == Role.ADMIN:
        return tokens.all()
    return tokens.filter(user_id=actor.pk)


def do_revoke_token(actor, token_id: int) -> ApiToken:
    """Delete a token: the actor's own, or any token for an admin. Its next use gets a 401."""
    token = ApiToken.objects.select_related("user").filter(pk=token_id).first()
    if token is None:
        raise ApiToken.DoesNotExist(f"token {token_id} not found")
    if token.user_id != actor.pk:
        require(actor, Role.ADMIN, "revoking another user's token")
    token.delete()
    return token
