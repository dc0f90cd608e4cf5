"""Metric history: one row per series, its raw samples packed per hour, and rollups packed per
hour (1-minute buckets) or per day (1-hour buckets). See dashboard/history/ for the code that
writes and reads them, and dashboard/history/codec.py for the blob formats."""

from __future__ import annotations

from django.db import models

from dashboard.models.nodes import Node

# A host metric has no GPU; a unique constraint over a NULL column would not deduplicate
# (NULLs are distinct in SQL), so the row stores -1 and the code above exposes None.
HOST_DEVICE = -1


class MetricSeries(models.Model):
    """One metric of one device of one node, e.g. ("gpu-node-1", "gpu.temperature_c", GPU 3)."""

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="metric_series")
    metric = models.CharField(max_length=100)
    gpu_index = models.SmallIntegerField(default=HOST_DEVICE, help_text="-1 for host metrics")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["node", "metric", "gpu_index"], name="metric_series_unique")
        ]

    def __str__(self) -> str:
        device = "host" if self.gpu_index == HOST_DEVICE else f"gpu{self.gpu_index}"
        return f"{self.node_id}/{device}/{self.metric}"

    @property
    def gpu(self) -> int | None:
        return None if self.gpu_index == HOST_DEVICE else self.gpu_index


class RawBlock(models.Model):
    """Raw samples of one series within one hour (``codec.encode_samples``).

    Each flush appends a small block; compaction (``history.compaction``) later merges an hour's
    blocks into one, which is what keeps a sample at a few bytes on disk."""

    series = models.ForeignKey(MetricSeries, on_delete=models.CASCADE, related_name="raw_blocks")
    block_start_s = models.BigIntegerField(help_text="epoch seconds, a multiple of 3600")
    first_ts_ms = models.BigIntegerField()
    last_ts_ms = models.BigIntegerField()
    sample_count = models.IntegerField()
    data = models.BinaryField()

    class Meta:
        indexes = [
            models.Index(fields=["series", "block_start_s"], name="rawblock_series_start"),
            models.Index(fields=["block_start_s"], name="rawblock_start"),
        ]


class RollupBlock(models.Model):
    """min/avg/max/count buckets of one series (``codec.encode_buckets``): at ``resolution_s`` 60,
    the 60 minutes of one hour; at 3600, the 24 hours of one day. Merged into on every flush."""

    series = models.ForeignKey(MetricSeries, on_delete=models.CASCADE, related_name="rollup_blocks")
    resolution_s = models.IntegerField(help_text="bucket width: 60 or 3600")
    block_start_s = models.BigIntegerField(help_text="epoch seconds, a multiple of the block length")
    data = models.BinaryField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["series", "resolution_s", "block_start_s"], name="rollupblock_unique"
            )
        ]
        indexes = [models.Index(fields=["resolution_s", "block_start_s"], name="rollupblock_res_start")]
