"""Nodes: machines that run the sampler (and usually a worker)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.conf import settings
from django.db import models
from django.utils import timezone


def natural_key(name: str) -> tuple[tuple[int | str, ...], str]:
    """Sort key that orders names as people count: sim-2 before sim-10 (plain names: sorted(names, key=natural_key)).

    Digit runs compare as numbers, the rest case-insensitively; re.split with a group puts text at
    even and digits at odd positions, so two keys never compare an int with a str. The name itself
    breaks ties (sim-01 and sim-1). The database cannot order this way portably, hence Python; the
    pages' scripts keep the server's order (they update rows in place, never re-sort them)."""
    parts = re.split(r"(\d+)", name)
    return tuple(int(p) if i % 2 else p.casefold() for i, p in enumerate(parts)), name


class Node(models.Model):
    """A machine running the sampler (and usually a worker); registered under its hostname."""

    name = models.CharField(max_length=200, unique=True)
    info = models.JSONField(default=dict, help_text="describe_node(): CPU, GPUs, driver, CUDA, torch")
    gpu_status = models.CharField(max_length=200, default="", help_text='"ok", or why there is no GPU')
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def last_seen_age_s(self) -> float:
        return (timezone.now() - self.last_seen).total_seconds()

    @property
    def sample_interval_s(self) -> float:
        return float(self.info.get("sample_interval_s") or settings.SAMPLE_INTERVAL_S)

    @property
    def offline_after_s(self) -> float:
        """Offline after 3 missed ticks of the node's own sampling interval (agents may differ)."""
        return 3 * self.sample_interval_s + 1.0

    @property
    def is_online(self) -> bool:
        return self.last_seen_age_s <= self.offline_after_s


def natural_order(nodes: Iterable[Node]) -> list[Node]:
    """Nodes as every page and the API list them: by natural_key of their names."""
    return sorted(nodes, key=lambda node: natural_key(node.name))
