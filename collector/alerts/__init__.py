"""Alerts: events grouped by fingerprint, triaged by people, every change in the audit log.

``grouping`` runs inside the ingest transaction; ``service`` is the API the
console and the alert router call; ``feed`` tells subscribers what changed.
The interface is written down in docs/alerts.md.
"""
