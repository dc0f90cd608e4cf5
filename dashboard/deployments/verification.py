"""After a promotion: did latency really improve? A change is watched until its ``verify_until``;
then latency during the window is compared with the same length of time before it."""

from __future__ import annotations

import logging
from datetime import datetime

import numpy as np
from django.conf import settings
from django.utils import timezone
from scipy.stats import mannwhitneyu

from dashboard.deployments.stats import VERDICT_STATS, values_between
from dashboard.models import DeploymentChange, VerificationVerdict

log = logging.getLogger(__name__)


def judge(change: DeploymentChange) -> tuple[str, dict]:
    """(verdict, detail) of a change whose window has passed.

    The statistic is the first of VERDICT_STATS with at least DEPLOY_VERIFY_MIN_SAMPLES values on
    each side: a mean of one or two probes says nothing about a deployment. "Improved" needs both
    a mean during the window at least DEPLOY_VERIFY_MIN_IMPROVEMENT (a fraction) below the mean
    before, and a one-sided Mann-Whitney U test that the values during are lower (p below
    DEPLOY_VERIFY_ALPHA): latency is skewed and noisy, and a drop inside the noise is not a win."""
    assert change.verify_until is not None
    at, until = change.at.timestamp(), change.verify_until.timestamp()
    window = until - at
    margin = settings.DEPLOY_VERIFY_MIN_IMPROVEMENT
    need = settings.DEPLOY_VERIFY_MIN_SAMPLES
    seen = {}
    for stat in VERDICT_STATS:
        before = values_between(change.deployment, stat, at - window, at)
        during = values_between(change.deployment, stat, at, until)
        seen[stat] = {"before": len(before), "during": len(during)}
        if len(before) >= need and len(during) >= need:
            return _compare(stat, before, during, margin, window)
    counts = "; ".join(
        f"{stat} {c['before']} before and {c['during']} during" for stat, c in seen.items() if any(c.values())
    )
    return VerificationVerdict.NO_DATA, {
        "reason": f"too few latency values to judge (at least {need} before and {need} during are needed"
        + (f"; had {counts})" if counts else "; had none)"),
        "counts": seen,
        "window_s": window,
    }


def _compare(
    stat: str, before: np.ndarray, during: np.ndarray, margin: float, window: float
) -> tuple[str, dict]:
    before_ms, during_ms = float(before.mean()), float(during.mean())
    change_pct = (during_ms - before_ms) / before_ms * 100.0 if before_ms else None
    # Identical samples on both sides make the test undefined; they are plainly not an improvement.
    p_value = (
        1.0
        if np.ptp(np.concatenate([before, during])) == 0
        else float(mannwhitneyu(during, before, alternative="less").pvalue)
    )
    large_enough = during_ms <= before_ms * (1.0 - margin)
    significant = p_value < settings.DEPLOY_VERIFY_ALPHA
    if large_enough and significant:
        verdict, reason = VerificationVerdict.IMPROVED, "lower, by more than the margin, and significantly"
    elif large_enough:
        verdict, reason = (
            VerificationVerdict.NOT_IMPROVED,
            "lower by more than the margin, but within the noise",
        )
    else:
        verdict, reason = VerificationVerdict.NOT_IMPROVED, "not lower by the margin"
    return verdict, {
        "stat": stat,
        "before_mean_ms": before_ms,
        "during_mean_ms": during_ms,
        "before_count": len(before),
        "during_count": len(during),
        "change_pct": change_pct,
        "min_improvement_pct": margin * 100.0,
        "p_value": p_value,
        "alpha": settings.DEPLOY_VERIFY_ALPHA,
        "reason": reason,
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
