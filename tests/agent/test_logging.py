"""Logging: JSON lines off a TTY, and secrets never rendered."""

from __future__ import annotations

import io
import json

import structlog

from agent.logging import configure_logging


def test_json_lines_when_not_a_tty() -> None:
    """On a pipe every log call is one JSON object with level and timestamp."""
    out = io.StringIO()
    configure_logging("info", "auto", stream=out)
    structlog.get_logger("t").info("agent ready", detectors=2, note="就绪")
    record = json.loads(out.getvalue())
    assert record["event"] == "agent ready" and record["level"] == "info"
    assert record["note"] == "就绪" and "timestamp" in record


def test_secrets_are_redacted() -> None:
    """Values under secret-like keys are replaced before rendering."""
    out = io.StringIO()
    configure_logging("info", "json", stream=out)
    structlog.get_logger("t").info("enrolled", **{"secret": "hunter2-secret", "token": "tok-123"})
    assert "hunter2-secret" not in out.getvalue() and "tok-123" not in out.getvalue()


def test_level_filters_debug() -> None:
    """At level info, debug lines are not written."""
    out = io.StringIO()
    configure_logging("info", "json", stream=out)
    structlog.get_logger("t").debug("noise")
    assert out.getvalue() == ""
