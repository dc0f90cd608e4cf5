"""Deployments: where a model version is served, and where its latency comes from (probes, ingest,
scrapes, network round trips)."""
