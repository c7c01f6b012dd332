"""Collector settings: where they come from and what is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.errors import ConfigError
from collector.settings import load_settings


def test_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Init kwargs beat environment variables, which beat the TOML file."""
    config = tmp_path / "collector.toml"
    config.write_text('listen_port = 1111\nlisten_host = "10.0.0.1"\nlog_format = "json"\n')
    monkeypatch.setenv("COURTGUARD_COLLECTOR_LISTEN_PORT", "2222")
    monkeypatch.setenv("COURTGUARD_COLLECTOR_LISTEN_HOST", "10.0.0.2")
    settings = load_settings(config, listen_port=3333)
    assert (settings.listen_port, settings.listen_host, settings.log_format) == (
        3333, "10.0.0.2", "json")


def test_config_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """COURTGUARD_COLLECTOR_CONFIG names the TOML file."""
    config = tmp_path / "c.toml"
    config.write_text("ingest_concurrency = 3\n")
    monkeypatch.setenv("COURTGUARD_COLLECTOR_CONFIG", str(config))
    assert load_settings().ingest_concurrency == 3


def test_missing_explicit_file(tmp_path: Path) -> None:
    """A config file named explicitly must exist."""
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "absent.toml")


def test_database_url_default(tmp_path: Path) -> None:
    """Without database_url the store is SQLite inside data_dir."""
    settings = load_settings(data_dir=tmp_path)
    assert settings.database_url == f"sqlite:///{tmp_path / 'collector.db'}"


def test_batch_limit_capped(tmp_path: Path) -> None:
    """max_batch_events above the wire contract's limit is refused."""
    with pytest.raises(ConfigError, match="max_batch_events"):
        load_settings(data_dir=tmp_path, max_batch_events=10_000)


def test_unknown_key(tmp_path: Path) -> None:
    """A misspelt key in the TOML file is refused."""
    config = tmp_path / "c.toml"
    config.write_text("listen_prot = 1\n")
    with pytest.raises(ConfigError, match="listen_prot"):
        load_settings(config)
