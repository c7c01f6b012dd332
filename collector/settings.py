"""The collector's settings: init kwargs, then ``COURTGUARD_COLLECTOR_*`` variables, then TOML.

The TOML file is named by ``--config``, else by ``COURTGUARD_COLLECTOR_CONFIG``,
else it is ``/etc/courtguard/collector.toml``. A missing default file is fine
(a fresh machine has none); a file named explicitly must exist.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import SettingsConfigDict

from agent.bundled_policies import bundled_policy_dir
from agent.events import MAX_BATCH_EVENTS, MAX_CAPTURE_BYTES
from agent.layered_settings import LayeredSettings
from collector.console.directory_settings import ConsoleSettings
from collector.errors import ConfigError
from collector.export.config import ExportSettings
from collector.notify.config import ChannelSettings
from collector.patrol.settings import PatrolSettings

DEFAULT_CONFIG: Final = Path("/etc/courtguard/collector.toml")
CONFIG_ENV: Final = "COURTGUARD_COLLECTOR_CONFIG"

#: ``127.0.0.1:9464`` or ``[::1]:9464``.
_HOST_PORT: Final = r"^(\[[0-9A-Fa-f:.]+\]|[^\s:\[\]]+):\d{1,5}$"


class MetricsSettings(BaseModel):
    """``[metrics]``: who may read the Prometheus metrics, and where (docs/metrics.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: ``api_key``: GET /metrics on the main port needs ``Authorization: Bearer <API key>``
    #: (any role). ``none``: open to anyone who reaches the port, as it used to be.
    auth: Literal["api_key", "none"] = "api_key"
    #: ``host:port`` of a plain-HTTP listener serving only /metrics, without a key (bind it
    #: to loopback or a management network); the main port then answers 404 on /metrics.
    listen: str | None = Field(default=None, pattern=_HOST_PORT)

    @model_validator(mode="after")
    def _port(self) -> MetricsSettings:
        address = self.listen_address
        if address is not None and not 0 < address[1] <= 65535:
            raise ValueError(f"listen: port {address[1]} is not between 1 and 65535")
        return self

    @property
    def listen_address(self) -> tuple[str, int] | None:
        if self.listen is None:
            return None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


class CollectorSettings(LayeredSettings):
    """Everything ``courtguard-collector`` reads at start; see README, "Configuration"."""

    CONFIG_ENV: ClassVar[str] = CONFIG_ENV
    DEFAULT_CONFIG: ClassVar[Path] = DEFAULT_CONFIG
    CONFIG_ERROR: ClassVar[Callable[..., Exception]] = ConfigError
    WHAT: ClassVar[str] = "collector"
    EXAMPLE: ClassVar[str] = "packaging/examples/collector.toml"

    model_config = SettingsConfigDict(env_prefix="COURTGUARD_COLLECTOR_", extra="forbid")

    data_dir: Path = Path("/var/lib/courtguard-collector")
    database_url: str = ""  # empty: sqlite:///{data_dir}/collector.db
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(default=8443, ge=0, le=65535)
    #: Bind with SO_REUSEPORT, so several collector processes on one host share one address
    #: and the kernel spreads new connections over them (docs/scaling.md).
    reuse_port: bool = False
    tls: bool = True
    public_url: str | None = None
    #: Seconds an idle keep-alive connection stays open. Agents give theirs up sooner
    #: (agent ``keepalive_expiry_s``, 75 s, above their 60 s heartbeat so a heartbeat reuses its
    #: connection) so they never reuse one the collector is closing. Every kept connection is an
    #: open file: ``serve`` counts two per agent (docs/scaling.md).
    keep_alive_timeout_s: float = Field(default=90.0, gt=0, le=3600)
    #: Seconds a stop waits for requests in flight before cancelling them (idle
    #: connections are closed at once).
    graceful_shutdown_s: float = Field(default=20.0, ge=0, le=600)
    policy_dir: Path | None = None

    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    max_decompressed_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    max_batch_events: int = Field(default=MAX_BATCH_EVENTS, ge=1, le=MAX_BATCH_EVENTS)
    ingest_concurrency: int = Field(default=8, ge=1, le=1024)
    retry_after_s: int = Field(default=2, ge=1, le=3600)
    #: Largest document POST /api/v1/documents/check accepts, and worker processes checking them.
    max_document_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    document_workers: int = Field(default=2, ge=1, le=64)
    #: The patrol of already-published documents (``[patrol]``; docs/documents.md, "Patrol").
    patrol: PatrolSettings = Field(default_factory=PatrolSettings)

    silent_check_interval_s: float = Field(default=15.0, gt=0)
    #: How often the holiday calendar's end is checked (first after one interval); its
    #: collector.calendar_* event goes out at most once a day however often this runs.
    calendar_check_interval_s: float = Field(default=3600.0, gt=0, le=86400)
    #: How often stored account events are correlated across hosts (shared accounts, scores).
    account_correlation_interval_s: float = Field(default=60.0, gt=0)
    #: Days events are kept (网络安全法 art. 21: network logs at least six months); 0 keeps forever.
    event_retention_days: float = Field(default=180.0, ge=0)
    #: Days agent.heartbeat events are kept; they only prove liveness. 0: as long as other events.
    heartbeat_retention_days: float = Field(default=7.0, ge=0)
    retention_interval_s: float = Field(default=3600.0, gt=0)
    #: Largest evidence pcap (取证抓包) the collector keeps for one event.
    evidence_max_bytes: int = Field(default=MAX_CAPTURE_BYTES, ge=4096, le=MAX_CAPTURE_BYTES)
    #: Days evidence pcaps are kept; 0: as long as events (``event_retention_days``).
    evidence_retention_days: float = Field(default=0.0, ge=0)
    #: How often SQLite's planner statistics are checked (and refreshed when a table drifted).
    statistics_interval_s: float = Field(default=600.0, gt=0)
    default_heartbeat_interval_s: float = Field(default=60.0, gt=0)
    #: How stale a served policy may be after another process published one.
    policy_refresh_s: float = Field(default=2.0, ge=0, le=300)
    #: Most policy fetches held open at once (``Prefer: wait``), each an open connection;
    #: beyond it (or beyond the open-file limit less a reserve) a fetch is answered at once
    #: and the agent polls on its timer. docs/scaling.md sizes it.
    policy_held_max: int = Field(default=25_000, ge=0)
    #: How long a checked agent credential (and its group) is trusted on the policy poll
    #: (0: check every time). Longer than the agents' poll interval, or every poll reads it.
    identity_cache_s: float = Field(default=300.0, ge=0, le=3600)
    #: Host isolation (一键隔离) waits for a second admin's approval; the requester cannot approve.
    isolation_requires_approval: bool = False
    #: A host that enrolls again (same host fingerprint, same group) takes its earlier agent's
    #: place, which is revoked; false: both stay and an ``agent.host_conflict`` event is raised.
    supersede_same_host: bool = True

    #: Console: sign-out after this long without a request, and at the latest after the max.
    console_idle_timeout_s: float = Field(default=1800.0, ge=60)
    console_session_max_s: float = Field(default=86400.0, ge=300)
    #: Console: failed sign-ins in a row that lock an account, and for how long.
    console_lockout_failures: int = Field(default=5, ge=1, le=100)
    console_lockout_s: float = Field(default=900.0, ge=1)
    #: Console: sign-in attempts one client address may make per minute (then 429).
    console_login_rate_per_min: int = Field(default=10, ge=1, le=10_000)
    #: Console: the language pages use until a user picks another (zh or en).
    console_language: Literal["zh", "en"] = "zh"
    #: ``[console]`` tables: ``[console.ldap]``, directory sign-on (docs/console.md).
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    #: ``[metrics]``: /metrics needs an API key, or has a listener of its own.
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)

    #: Notification channels by name (the alerting policy's receivers use them): type, URL,
    #: secrets, rate limit, retries. See README, "Alerting" and docs/alerting.md.
    notify_channels: dict[str, ChannelSettings] = Field(default_factory=dict)
    #: Key of the signed acknowledgement links; empty: data_dir/alert-link.key (made once).
    #: Collector processes on different machines must share it.
    alert_link_secret: str | None = None
    #: Run the alert router in this process (one process at a time routes, by lease).
    alert_router: bool = True
    #: Seconds a singleton's lease (router, exports, periodic passes) outlives its last
    #: renewal: how long work waits after its collector process died. Renewed every third.
    lease_s: float = Field(default=30.0, ge=3, le=600)

    #: SIEM outputs (``[[export.outputs]]``): syslog over TLS in CEF or ECS JSON, NDJSON over
    #: HTTPS. See README, "Export to a SIEM" and docs/export.md.
    export: ExportSettings = Field(default_factory=ExportSettings)

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
        if (self.data_dir / "policies").is_dir():
            return self.data_dir / "policies"
        return bundled_policy_dir()

    @property
    def url(self) -> str:
        """The URL agents and operators use: public_url, else the listen address."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.listen_host}]" if ":" in self.listen_host else self.listen_host
        return f"{'https' if self.tls else 'http'}://{host}:{self.listen_port}"


def load_settings(
    config: str | os.PathLike[str] | None = None, **overrides: Any
) -> CollectorSettings:
    """Read settings from all sources; raise ConfigError with every problem listed."""
    return CollectorSettings.load(config, **overrides)
