"""Metric history: batched ingest (writer), rollups, compaction, retention and queries.

Tiers: raw samples kept RETENTION_RAW_H hours, 1-minute buckets RETENTION_1M_D days, 1-hour
buckets RETENTION_1H_D days (settings; environment PERFMON_RETENTION_*)."""
