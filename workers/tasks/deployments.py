"""Celery tasks of deployments: beat finds what is due; probes run on the deployment's own device
queue, scrapes and verdicts in the maintenance worker. Thin: re-fetch, check, delegate."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

from celery import shared_task
from django.conf import settings

from dashboard.deployments import probes
from dashboard.deployments.verification import verify_due
from dashboard.models import Deployment
from dashboard.tasknames import PROBE_DEPLOYMENT
from workers import scrape

log = logging.getLogger(__name__)


@shared_task(name="perfmon.schedule_probes", queue="maintenance")
def schedule_probes() -> list[str]:
    """Send a probe to each deployment due one (beat, every few seconds)."""
    return probes.send_due_probes()


@shared_task(name=PROBE_DEPLOYMENT, acks_late=False, max_retries=0)
def probe_deployment(deployment_id: int) -> str:
    """Measure the deployment's active version with its params, and its endpoint's round trip."""
    deployment = Deployment.objects.select_related("active_version__model").filter(pk=deployment_id).first()
    if deployment is None:
        return "gone"
    holder = probes.device_holder(deployment)
    if holder is not None:
        reason = f"{holder.kind} job #{holder.pk} holds {deployment.params.get('device', 'cpu')}"
        probes.set_probe_state(deployment_id, "skipped", reason)
        return f"skipped: {reason}"
    from workers.probe import measure, time_endpoint
    from workers.tasks.jobs import _load_model

    version = deployment.active_version
    label = f"{version.model.name}@{version.version}"
    ts = time.time()
    stats: dict[str, float] = {}
    problems = []
    try:
        model, input_spec = _load_model(label)
        stats.update(measure(model, input_spec, deployment.params, settings.DEPLOY_PROBE_BUDGET_S))
    except Exception as exc:  # the model, the node or the spec: say which on the deployment page
        log.warning("probe of %s failed: %s", deployment.name, exc)
        problems.append(f"measurement: {type(exc).__name__}: {exc}")
    if deployment.endpoint_url:
        try:
            stats.update(time_endpoint(deployment.endpoint_url, settings.DEPLOY_PROBE_E2E_REQUESTS))
        except OSError as exc:
            problems.append(f"endpoint: {exc}")
    probes.record(deployment, ts, stats)
    status = "failed" if not stats else "ok"
    probes.set_probe_state(deployment_id, status, "; ".join(problems), version=label, stats=stats)
    return status


# Endpoints due in one run are read at once, so one that hangs for its whole timeout (5 s) does
# not hold up every other deployment's scrape behind it in the maintenance worker.
SCRAPE_CONCURRENCY = 16


@shared_task(name="perfmon.scrape_deployments", queue="maintenance")
def scrape_deployments() -> dict[str, str]:
    """Scrape each deployment due one; returns name -> what happened."""
    due = probes.due_scrapes()
    if not due:
        return {}
    with ThreadPoolExecutor(min(SCRAPE_CONCURRENCY, len(due)), thread_name_prefix="scrape") as pool:
        fetched = list(pool.map(_fetch, due))  # network only: the database is written below, here
    done = {}
    for deployment, text in zip(due, fetched, strict=True):
        try:
            if isinstance(text, Exception) and not isinstance(text, scrape.ScrapeError):
                raise text
            done[deployment.name] = scrape_one(deployment, fetched=text)
        except Exception as exc:  # a config edited into something unreadable: the others still run
            log.exception("scrape of %s failed", deployment.name)
            probes.set_scrape_state(
                deployment.pk, {**(deployment.scrape_state or {}), "error": f"{type(exc).__name__}: {exc}"}
            )
            done[deployment.name] = f"error: {exc}"
    return done


def _fetch(deployment: Deployment) -> str | Exception:
    try:
        return scrape.fetch((deployment.scrape or {})["url"])
    except Exception as exc:  # handed back, and judged with the deployment's other outcomes
        return exc


def scrape_one(
    deployment: Deployment, now: float | None = None, fetched: str | Exception | None = None
) -> str:
    """Read the deployment's metrics endpoint (or take ``fetched``, its text or ScrapeError, read
    already), derive the interval's latency, store it."""
    config = deployment.scrape or {}
    now = time.time() if now is None else now
    previous = (deployment.scrape_state or {}).get("counters")
    try:
        text = scrape.fetch(config["url"]) if fetched is None else fetched
        if isinstance(text, Exception):
            raise text
        counters = scrape.read_counters(text, config["format"], config.get("model"))
    except scrape.ScrapeError as exc:
        # Keep the counters: the next good scrape measures across the failed one.
        probes.set_scrape_state(
            deployment.pk, {**(deployment.scrape_state or {}), "error": str(exc), "error_at": now}
        )
        return f"error: {exc}"
    outcome = scrape.derive(previous, counters)
    state = {"ts": now, "counters": outcome.counters, "skipped": outcome.skipped}
    if outcome.interval is not None:
        stats = outcome.interval.stats()
        probes.record(deployment, now, stats)
        state["last"] = {**stats, "requests": outcome.interval.requests}
    probes.set_scrape_state(deployment.pk, state)
    return outcome.skipped or "ok"


@shared_task(name="perfmon.verify_promotions", queue="maintenance")
def verify_promotions() -> int:
    """Give their verdict to promotions whose verification window has passed."""
    return verify_due()
