"""perfmon: see and fix the performance of PyTorch models on GPU nodes."""

# Load the Celery app with Django, so tasks sent from the web process use perfmon's broker
# settings rather than Celery's default app (the pattern Celery's Django guide prescribes).
from perfmon.celery import app as celery_app  # noqa: E402

__all__ = ["celery_app"]
