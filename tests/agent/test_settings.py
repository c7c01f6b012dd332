"""Agent settings: defaults, TOML file, environment, keyword arguments, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.errors import ConfigError
from agent.settings import load_settings


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults_need_no_file() -> None:
    """Without any file or variable the documented defaults apply."""
    settings = load_settings()
    assert settings.data_dir == Path("/var/lib/courtguard")
    assert settings.heartbeat_interval_s == 60
    assert settings.spool_max_bytes == 64 * 1024 * 1024
    assert settings.batch_max_events == 500 and settings.batch_max_bytes == 1024 * 1024
    assert settings.allow_plain_http is False
    assert settings.detector_enabled("anything")


def test_toml_file_is_read(tmp_path: Path) -> None:
    """Values in the --config TOML file are used."""
    config = write(
        tmp_path / "agent.toml",
        'data_dir = "/srv/cg"\nheartbeat_interval_s = 5\n[detectors]\noutreach = false\n',
    )
    settings = load_settings(config)
    assert settings.data_dir == Path("/srv/cg") and settings.heartbeat_interval_s == 5
    assert not settings.detector_enabled("outreach")


def test_environment_overrides_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """COURTGUARD_AGENT_* variables beat the TOML file, nested ones included."""
    config = write(tmp_path / "agent.toml", "heartbeat_interval_s = 5\n[detectors]\na = false\n")
    monkeypatch.setenv("COURTGUARD_AGENT_HEARTBEAT_INTERVAL_S", "7")
    monkeypatch.setenv("COURTGUARD_AGENT_DETECTORS__B", "false")
    settings = load_settings(config)
    assert settings.heartbeat_interval_s == 7
    assert settings.detectors == {"a": False, "b": False}


def test_arguments_override_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keyword arguments beat the environment."""
    monkeypatch.setenv("COURTGUARD_AGENT_BATCH_MAX_EVENTS", "50")
    assert load_settings(batch_max_events=20).batch_max_events == 20


def test_config_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """COURTGUARD_AGENT_CONFIG names the file when --config is absent."""
    config = write(tmp_path / "x.toml", "log_level = 'debug'\n")
    monkeypatch.setenv("COURTGUARD_AGENT_CONFIG", str(config))
    assert load_settings().log_level == "debug"


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    """A --config file that does not exist is a ConfigError naming it."""
    with pytest.raises(ConfigError, match=r"missing\.toml does not exist"):
        load_settings(tmp_path / "missing.toml")


def test_bad_toml_is_an_error(tmp_path: Path) -> None:
    """A file that is not TOML is a ConfigError naming the file."""
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path / "agent.toml", "heartbeat_interval_s = = 5\n"))


def test_unknown_key_is_an_error(tmp_path: Path) -> None:
    """A misspelt key is refused, with its name in the message."""
    with pytest.raises(ConfigError, match="heartbeat_intervall_s"):
        load_settings(write(tmp_path / "agent.toml", "heartbeat_intervall_s = 5\n"))


def test_bad_value_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """An out-of-range value from the environment is a ConfigError naming the field."""
    monkeypatch.setenv("COURTGUARD_AGENT_BATCH_MAX_EVENTS", "0")
    with pytest.raises(ConfigError, match="batch_max_events"):
        load_settings()
