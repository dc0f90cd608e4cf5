"""`perfmon manage evaluator`: the alert rule evaluator, supervised by `perfmon up`."""

from __future__ import annotations

import signal
import threading

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Evaluate alert rules as observations arrive (runs until SIGTERM/SIGINT)."

    def handle(self, *args, **options) -> None:
        from dashboard.alerting.evaluator import Evaluator

        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        Evaluator().run(stop)
