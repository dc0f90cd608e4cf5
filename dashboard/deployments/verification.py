"""After a promotion: did latency really improve? A change is watched until its ``verify_until``;
then the mean latency during the window is compared with the same length of time before it."""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from dashboard.deployments.stats import VERDICT_STATS, values_between
from dashboard.models import DeploymentChange, VerificationVerdict

log = logging.getLogger(__name__)


def judge(change: DeploymentChange) -> tuple[str, dict]:
    """(verdict, detail) of a change whose window has passed. The statistic is the first of
    VERDICT_STATS with data on both sides; "improved" needs the mean during the window to be at
    least DEPLOY_VERIFY_MIN_IMPROVEMENT (a fraction) below the mean before."""
    assert change.verify_until is not None
    at, until = change.at.timestamp(), change.verify_until.timestamp()
    window = until - at
    margin = settings.DEPLOY_VERIFY_MIN_IMPROVEMENT
    seen = {}
    for stat in VERDICT_STATS:
        before = values_between(change.deployment, stat, at - window, at)
        during = values_between(change.deployment, stat, at, until)
        seen[stat] = {"before": len(before), "during": len(during)}
        if len(before) and len(during):
            before_ms, during_ms = float(before.mean()), float(during.mean())
            improved = during_ms <= before_ms * (1.0 - margin)
            detail = {
                "stat": stat,
                "before_mean_ms": before_ms,
                "during_mean_ms": during_ms,
                "before_count": len(before),
                "during_count": len(during),
                "change_pct": (during_ms - before_ms) / before_ms * 100.0 if before_ms else None,
                "min_improvement_pct": margin * 100.0,
                "window_s": window,
            }
            verdict = VerificationVerdict.IMPROVED if improved else VerificationVerdict.NOT_IMPROVED
            return verdict, detail
    return VerificationVerdict.NO_DATA, {
        "reason": "no latency both before and during the window",
        "counts": seen,
        "window_s": window,
    }


def verify_due(now: datetime | None = None) -> int:
    """Give their verdict to the watched changes whose window has passed; returns how many.
    Claimed with a conditional update, so two beat runs never judge one change twice."""
    now = timezone.now() if now is None else now
    done = 0
    due = DeploymentChange.objects.filter(verdict=VerificationVerdict.WATCHING, verify_until__lte=now)
    for change in due.select_related("deployment"):
        try:
            verdict, detail = judge(change)
        except Exception as exc:  # say so on the change rather than retry it forever
            log.exception("verification of change %s failed", change.pk)
            verdict, detail = VerificationVerdict.NO_DATA, {"reason": f"could not be judged: {exc}"}
        done += DeploymentChange.objects.filter(pk=change.pk, verdict=VerificationVerdict.WATCHING).update(
            verdict=verdict, verdict_detail=detail
        )
    return done
