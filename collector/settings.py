"""The collector's settings: init kwargs, then ``COURTGUARD_COLLECTOR_*`` variables, then TOML.

The TOML file is named by ``--config``, else by ``COURTGUARD_COLLECTOR_CONFIG``,
else it is ``/etc/courtguard/collector.toml``. A missing default file is fine
(a fresh machine has none); a file named explicitly must exist.
"""

from __future__ import annotations

import os
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from agent.events import MAX_BATCH_EVENTS
from collector.errors import ConfigError

DEFAULT_CONFIG: Final = Path("/etc/courtguard/collector.toml")
CONFIG_ENV: Final = "COURTGUARD_COLLECTOR_CONFIG"
#: The repository's own policies, used when neither policy_dir nor data_dir/policies exists.
PACKAGED_POLICIES: Final = Path(__file__).resolve().parents[1] / "policies"

# Which TOML file the next CollectorSettings() reads; set by load_settings only.
_toml_file: ContextVar[Path | None] = ContextVar("courtguard_collector_toml", default=None)


class CollectorSettings(BaseSettings):
    """Everything ``courtguard-collector`` reads at start; see README, "Configuration"."""

    model_config = SettingsConfigDict(env_prefix="COURTGUARD_COLLECTOR_", extra="forbid")

    data_dir: Path = Path("/var/lib/courtguard-collector")
    database_url: str = ""  # empty: sqlite:///{data_dir}/collector.db
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(default=8443, ge=0, le=65535)
    tls: bool = True
    public_url: str | None = None
    policy_dir: Path | None = None

    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    max_decompressed_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    max_batch_events: int = Field(default=MAX_BATCH_EVENTS, ge=1, le=MAX_BATCH_EVENTS)
    ingest_concurrency: int = Field(default=8, ge=1, le=1024)
    retry_after_s: int = Field(default=2, ge=1, le=3600)

    silent_check_interval_s: float = Field(default=15.0, gt=0)
    default_heartbeat_interval_s: float = Field(default=60.0, gt=0)

    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    sqlite_synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = "FULL"
    sqlite_busy_timeout_ms: int = Field(default=10_000, ge=0)
    db_pool_size: int = Field(default=10, ge=1)

    @model_validator(mode="after")
    def _derived(self) -> CollectorSettings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'collector.db'}"
        return self

    @property
    def tls_dir(self) -> Path:
        return self.data_dir / "tls"

    @property
    def ca_cert_path(self) -> Path:
        return self.tls_dir / "ca.pem"

    @property
    def server_cert_path(self) -> Path:
        return self.tls_dir / "server.pem"

    @property
    def server_key_path(self) -> Path:
        return self.tls_dir / "server.key"

    @property
    def effective_policy_dir(self) -> Path | None:
        """Where the ``agent`` policy is read: the setting, data_dir/policies, or the repo's."""
        if self.policy_dir is not None:
            return self.policy_dir
        for candidate in (self.data_dir / "policies", PACKAGED_POLICIES):
            if candidate.is_dir():
                return candidate
        return None

    @property
    def url(self) -> str:
        """The URL agents and operators use: public_url, else the listen address."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.listen_host}]" if ":" in self.listen_host else self.listen_host
        return f"{'https' if self.tls else 'http'}://{host}:{self.listen_port}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = _toml_file.get()
        if toml_file is None:
            return (init_settings, env_settings)
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file))


def config_path(explicit: str | os.PathLike[str] | None) -> tuple[Path, bool]:
    """The TOML file to read and whether it was named explicitly (and so must exist)."""
    if explicit:
        return Path(explicit), True
    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        return Path(from_env), True
    return DEFAULT_CONFIG, False


def load_settings(
    config: str | os.PathLike[str] | None = None, **overrides: Any
) -> CollectorSettings:
    """Read settings from all sources; raise ConfigError with every problem listed."""
    path, explicit = config_path(config)
    toml_file: Path | None = path
    if not path.is_file():
        if explicit:
            raise ConfigError(
                f"config file {path} does not exist; create it or drop --config/{CONFIG_ENV}"
            )
        toml_file = None
    else:
        try:
            tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"config file {path} cannot be read as TOML: {exc}") from exc
    token = _toml_file.set(toml_file)
    try:
        return CollectorSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "\n".join(
            f"  {'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        source = f" (file {toml_file})" if toml_file else ""
        raise ConfigError(f"invalid collector settings{source}:\n{problems}") from exc
    finally:
        _toml_file.reset(token)
