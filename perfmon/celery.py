"""The Celery app: Redis is broker and result store; tasks live in workers/tasks/."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "perfmon.settings")

app = Celery("perfmon")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["workers"])
