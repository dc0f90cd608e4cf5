"""The storage tiers: resolutions, how buckets are packed into blocks, and how long each is kept."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

RAW_BLOCK_S = 3600  # raw samples are packed one block per series per hour


@dataclass(frozen=True)
class RollupTier:
    resolution_s: int  # bucket width
    block_s: int  # the span one RollupBlock row covers

    @property
    def slots(self) -> int:
        return self.block_s // self.resolution_s


MINUTE = RollupTier(resolution_s=60, block_s=3600)
HOUR = RollupTier(resolution_s=3600, block_s=86400)
ROLLUP_TIERS = (MINUTE, HOUR)
RAW_RESOLUTION_S = 1  # nominal: the sampler's default period


def retention_s() -> dict[int, float]:
    """Seconds each resolution is kept, by resolution (1 = raw), from the settings."""
    return {
        RAW_RESOLUTION_S: settings.HISTORY_RETENTION_RAW_H * 3600.0,
        MINUTE.resolution_s: settings.HISTORY_RETENTION_1M_D * 86400.0,
        HOUR.resolution_s: settings.HISTORY_RETENTION_1H_D * 86400.0,
    }
