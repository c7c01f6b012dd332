"""Shared fixtures for the agent's tests: a data dir, a policy dir, settings, a fake collector."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from agent.settings import AgentSettings
from agent.testing import FakeCollector, write_credentials

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No COURTGUARD_AGENT_* or systemd variable from the caller's shell leaks into a test."""
    import os

    for name in list(os.environ):
        if name.startswith("COURTGUARD_AGENT_") or name in ("NOTIFY_SOCKET", "WATCHDOG_USEC"):
            monkeypatch.delenv(name)
    monkeypatch.setattr("agent.settings.DEFAULT_CONFIG", tmp_path / "no-such-agent.toml")
    yield
    structlog.reset_defaults()


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    """A copy of the project's policies (every registered detector reads its own)."""
    directory = tmp_path / "policies"
    directory.mkdir()
    for policy in (REPO / "policies").glob("*.yaml"):
        shutil.copy(policy, directory / policy.name)
    return directory


@pytest.fixture
def collector() -> FakeCollector:
    return FakeCollector()


@pytest.fixture
def make_settings(tmp_path: Path, policy_dir: Path) -> Callable[..., AgentSettings]:
    """Settings in tmp_path, fast timings, plain http allowed; keyword arguments override."""

    def make(**overrides: Any) -> AgentSettings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "policy_dir": policy_dir,
            "hostname": "ws-test",
            "allow_plain_http": True,
            "heartbeat_interval_s": 3600,
            "batch_max_age_s": 0,
            "drain_start_jitter_s": 0,
            "spool_poll_s": 0.05,
            "backoff_initial_s": 0.01,
            "backoff_max_s": 0.05,
            "shutdown_flush_s": 2,
            # Real detectors change the host; daemon tests run fakes or none.
            "detectors": {"outreach": False},
        }
        values.update(overrides)
        return AgentSettings(**values)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., AgentSettings]) -> AgentSettings:
    return make_settings()


@pytest.fixture
def enrolled(settings: AgentSettings, collector: FakeCollector) -> AgentSettings:
    """Settings whose data dir holds credentials for the fake collector."""
    write_credentials(settings.data_dir, collector)
    return settings
