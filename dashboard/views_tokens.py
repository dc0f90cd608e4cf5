"""/tokens/: create, list and revoke your API tokens (an admin sees and revokes everyone's, and makes
agent tokens). A new token is shown once, on the answer to the POST that made it."""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from dashboard.models import ROLE_RANK, ApiToken, Role
from dashboard.permissions import has_role, role_of
from dashboard.token_actions import (
    BadTokenRequest,
    do_issue_agent_token,
    do_issue_token,
    do_revoke_token,
    parse_expiry,
    visible_tokens,
)

EXPIRY_CHOICES = [
    ("30d", "in 30 days"),
    ("7d", "in 7 days"),
    ("90d", "in 90 days"),
    ("365d", "in a year"),
    ("never", "never"),
]


class TokenForm(forms.Form):
    label = forms.CharField(max_length=100, required=False, help_text="what it is for, e.g. 'CI'")
    role = forms.ChoiceField(choices=[])
    expires = forms.ChoiceField(choices=EXPIRY_CHOICES, label="Expires")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        mine = ROLE_RANK[role_of(user)]
        # Only the roles the user may give: a token never does more than its user.
        self.fields["role"].choices = [(r.value, r.label) for r in Role if ROLE_RANK[r] <= mine]
        self.fields["role"].initial = Role.VIEWER.value


class AgentTokenForm(forms.Form):
    node = forms.CharField(max_length=140, help_text="the agent's node name (PERFMON_NODE_NAME)")
    expires = forms.ChoiceField(choices=EXPIRY_CHOICES, label="Expires", initial="never")


def _page(request: HttpRequest, *, form=None, agent_form=None, new_token=None, status=200) -> HttpResponse:
    context = {
        "tokens": visible_tokens(request.user),
        "form": form or TokenForm(user=request.user),
        "agent_form": (agent_form or AgentTokenForm()) if has_role(request.user, Role.ADMIN) else None,
        "new_token": new_token,
        "role": role_of(request.user),
        "show_owner": has_role(request.user, Role.ADMIN),
    }
    return render(request, "dashboard/tokens.html", context, status=status)


@login_required
def tokens(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _page(request)
    form = TokenForm(request.POST, user=request.user)
    if not form.is_valid():
        return _page(request, form=form, status=400)
    try:
        _token, raw = do_issue_token(
            request.user,
            role=form.cleaned_data["role"],
            expires_at=parse_expiry(form.cleaned_data["expires"]),
            label=form.cleaned_data["label"],
        )
    except BadTokenRequest as exc:
        form.add_error(None, str(exc))
        return _page(request, form=form, status=400)
    return _page(request, new_token=raw, status=201)


@login_required
@require_POST
def agent_token(request: HttpRequest) -> HttpResponse:
    form = AgentTokenForm(request.POST)
    if not form.is_valid():
        return _page(request, agent_form=form, status=400)
    try:
        _token, raw = do_issue_agent_token(
            request.user, form.cleaned_data["node"], expires_at=parse_expiry(form.cleaned_data["expires"])
        )
    except BadTokenRequest as exc:
        form.add_error("node", str(exc))
        return _page(request, agent_form=form, status=400)
    return _page(request, new_token=raw, status=201)


@login_required
@require_POST
def revoke_token(request: HttpRequest, token_id: int) -> HttpResponse:
    try:
        do_revoke_token(request.user, token_id)
    except ApiToken.DoesNotExist:
        raise Http404(f"token {token_id} not found") from None
    return redirect("dashboard:tokens")
