"""Prometheus series of the SIEM outputs, registered into the process's ``Metrics`` registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class ExportMetrics:
    """Per output: how far behind, what was sent, what failed."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.lag_events = Gauge(
            "courtguard_export_lag_events", "Events stored after the output's cursor.",
            ["output"], registry=registry,
        )
        self.lag_seconds = Gauge(
            "courtguard_export_lag_seconds",
            "Age of the oldest stored event the output has not passed yet (0: caught up).",
            ["output"], registry=registry,
        )
        self.sent = Counter(
            "courtguard_export_sent", "Records the receiver took, by record type.",
            ["output", "record"], registry=registry,
        )
        self.failed = Counter(
            "courtguard_export_failed", "Batches the receiver did not take (sent again later).",
            ["output"], registry=registry,
        )
        self.last_success = Gauge(
            "courtguard_export_last_success_timestamp_seconds",
            "When the receiver last took a batch (Unix time).", ["output"], registry=registry,
        )

    def add_output(self, name: str) -> None:
        """Give the output's series a value from the start, so a dashboard sees zeros."""
        self.lag_events.labels(name)
        self.lag_seconds.labels(name)
        self.failed.labels(name)
        for record in ("event", "alert_change"):
            self.sent.labels(name, record)
