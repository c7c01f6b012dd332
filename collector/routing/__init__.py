"""Alert routing for the 24-hour duty: roster, routes, silences, escalation (docs/alerting.md)."""
