"""Prometheus metrics of one collector process, in a registry of its own (one per app)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from collector.export.metrics import ExportMetrics

AGENT_STATUSES = ("online", "silent", "revoked", "never_seen")


class Metrics:
    """The counters the ingest path, the monitor and /metrics share."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.ingest_requests = Counter(
            "courtguard_ingest_requests", "Event batch requests by HTTP status.",
            ["status"], registry=self.registry,
        )
        self.events = Counter(
            "courtguard_ingest_events", "Events in acknowledged batches, new or duplicate.",
            ["result"], registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "courtguard_ingest_batch_seconds",
            "Time to decode, validate and store one batch.",
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.agents = Gauge(
            "courtguard_agents", "Enrolled agents by status.", ["status"], registry=self.registry
        )
        self.silent_events = Counter(
            "courtguard_silent_events", "agent.silent events this process made.",
            registry=self.registry,
        )
        self.gaps_opened = Counter(
            "courtguard_sequence_gaps_opened", "Sequence gaps detected in incoming batches.",
            registry=self.registry,
        )
        self.pruned = Counter(
            "courtguard_events_pruned", "Events deleted by retention, heartbeats apart.",
            ["class"], registry=self.registry,
        )
        self.policy_fetches = Counter(
            "courtguard_policy_fetches", "Agent policy polls by answer (200 bundle, 304 same).",
            ["status"], registry=self.registry,
        )
        # -- SIEM outputs: lag, sent, failed (collector/export/metrics.py) --
        self.export = ExportMetrics(self.registry)
        # -- end of SIEM outputs --
        for status in AGENT_STATUSES:
            self.agents.labels(status).set(0)
        for result in ("accepted", "duplicate"):
            self.events.labels(result)
        for kind in ("heartbeat", "event"):
            self.pruned.labels(kind)

    def render(self, agent_counts: dict[str, int]) -> bytes:
        for status in AGENT_STATUSES:
            self.agents.labels(status).set(agent_counts.get(status, 0))
        return generate_latest(self.registry)
