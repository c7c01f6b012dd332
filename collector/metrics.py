"""Prometheus metrics of one collector process, in a registry of its own (one per app).

Counters are kept by the code that counts (ingest, retention, the notification
outbox); the agents' health is read from the store when /metrics is scraped
(``AgentHealth``), so it is right in every collector process, not only in the
one whose monitor saw the change. Labels never carry host names or accounts:
only statuses, channels, reasons, versions and detector names, whose number
stays small however many agents there are.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from agent.events import utcnow
from collector.export.metrics import ExportMetrics

AGENT_STATUSES = ("online", "silent", "revoked", "never_seen")


class Metrics:
    """The counters the ingest path, the monitor, the outbox and /metrics share."""

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
        self.policy_not_held = Counter(
            "courtguard_policy_fetches_not_held",
            "Policy fetches asking to be held, answered at once: policy_held_max reached.",
            registry=self.registry,
        )
        self.connections_opened = Counter(
            "courtguard_connections_opened",
            "Connections this process accepted (over HTTPS each a TLS handshake); agents keep "
            "theirs open, so it grows with reconnects, not with requests.",
            registry=self.registry,
        )
        # -- SIEM outputs: lag, sent, failed (collector/export/metrics.py) --
        self.export = ExportMetrics(self.registry)
        # -- end of SIEM outputs --
        for result in ("accepted", "duplicate"):
            self.events.labels(result)
        for kind in ("heartbeat", "event"):
            self.pruned.labels(kind)

        # -- notifications (collector/notify/outbox.py) -----------------------------------
        self.notifications_sent = Counter(
            "courtguard_notifications_sent", "Notifications a receiver accepted, by channel.",
            ["channel"], registry=self.registry,
        )
        self.notification_failures = Counter(
            "courtguard_notification_failures",
            "Delivery attempts that failed (refused, timed out, unreachable), by channel.",
            ["channel"], registry=self.registry,
        )
        self.notification_retries = Counter(
            "courtguard_notification_retries",
            "Failed attempts scheduled to be tried again on the same channel, by channel.",
            ["channel"], registry=self.registry,
        )
        self.notification_fallbacks = Counter(
            "courtguard_notification_fallbacks",
            "Notifications moved to the receiver's next channel after the last attempt on "
            "this one failed, by the channel given up.",
            ["channel"], registry=self.registry,
        )
        self.notifications_undeliverable = Counter(
            "courtguard_notifications_undeliverable",
            "Notifications given up because every channel of the receiver failed.",
            registry=self.registry,
        )
        self.digest_size = Histogram(
            "courtguard_notification_digest_size",
            "Notifications folded into one digest when a channel's rate limit was reached.",
            buckets=(2, 3, 5, 10, 20, 50, 100, 200, 500, 1000),
            registry=self.registry,
        )
        self.ingest_to_send = Histogram(
            "courtguard_notification_ingest_to_send_seconds",
            "From the collector receiving the newest event of a notification's alerts to the "
            "receiver accepting it, by reason (group: a new alert; repeat, escalation and "
            "digest wait by design).",
            ["reason"],
            buckets=(0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 14400, 86400),
            registry=self.registry,
        )

    def watch_agents(
        self,
        rows: Callable[[], Iterable[Mapping[str, Any]]],
        status_of: Callable[[Mapping[str, Any], datetime], str],
    ) -> None:
        """Report the agents' health from ``rows()`` at every scrape (see ``AgentHealth``)."""
        self.registry.register(AgentHealth(rows, status_of))

    def render(self) -> bytes:
        return generate_latest(self.registry)


def degraded_detectors(heartbeat: Mapping[str, Any] | None) -> list[str]:
    """Detectors the heartbeat reports ``degraded`` or ``failed`` (``disabled`` is a choice)."""
    detectors = (heartbeat or {}).get("detectors") or {}
    if not isinstance(detectors, dict):
        return []
    return sorted(
        str(name) for name, health in detectors.items()
        if isinstance(health, dict) and health.get("state") in ("degraded", "failed")
    )


class AgentHealth(Collector):
    """Per-agent health, aggregated from the agents table when scraped.

    One read of the agents table per scrape (no events), so every collector
    process reports the same; its cost is in docs/metrics.md. Revoked agents
    count only in ``courtguard_agents``.
    """

    def __init__(
        self,
        rows: Callable[[], Iterable[Mapping[str, Any]]],
        status_of: Callable[[Mapping[str, Any], datetime], str],
    ) -> None:
        self.rows = rows
        self.status_of = status_of

    @staticmethod
    def families() -> dict[str, GaugeMetricFamily]:
        """The families this collector reports, without samples."""
        return {
            "status": GaugeMetricFamily("courtguard_agents", "Enrolled agents by status.",
                                        labels=["status"]),
            "degraded": GaugeMetricFamily(
                "courtguard_agents_degraded",
                "Online agents whose last heartbeat reports a detector degraded or failed."),
            "detector": GaugeMetricFamily(
                "courtguard_agents_degraded_detector",
                "Online agents whose last heartbeat reports this detector degraded or failed.",
                labels=["detector"]),
            "version": GaugeMetricFamily(
                "courtguard_agents_by_version", "Agents not revoked, by agent version.",
                labels=["version"]),
            "policy": GaugeMetricFamily(
                "courtguard_agents_by_policy_version",
                "Agents not revoked, by the policy version of their last heartbeat (none: "
                "never reported one).",
                labels=["policy_version"]),
        }

    def describe(self) -> Iterable[Any]:
        # Names only: the registry checks them for clashes without reading the store.
        return list(self.families().values())

    def collect(self) -> Iterable[Any]:
        now = utcnow()
        statuses: Tally[str] = Tally()
        versions: Tally[str] = Tally()
        policies: Tally[str] = Tally()
        detectors: Tally[str] = Tally()
        degraded = 0
        for row in self.rows():
            status = self.status_of(row, now)
            statuses[status] += 1
            if status == "revoked":
                continue
            versions[row.get("agent_version") or "unknown"] += 1
            policies[row.get("policy_version") or "none"] += 1
            names = degraded_detectors(row.get("last_heartbeat")) if status == "online" else []
            degraded += bool(names)
            detectors.update(names)
        family = self.families()
        for status in AGENT_STATUSES:
            family["status"].add_metric([status], statuses.get(status, 0))
        family["degraded"].add_metric([], degraded)
        for label, tally in (("detector", detectors), ("version", versions),
                             ("policy", policies)):
            for value, count in sorted(tally.items()):
                family[label].add_metric([value], count)
        return list(family.values())
