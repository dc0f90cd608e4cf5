"""The firing-alert count every page shows in its navigation (then kept live by alerts-toast.js)."""

from __future__ import annotations

from django.http import HttpRequest


def firing_alerts(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from dashboard.alerting.notify import firing_count

    # Lazy: a page that never renders the navigation (an API error, a fragment) costs no query.
    return {"firing_alert_count": firing_count}
