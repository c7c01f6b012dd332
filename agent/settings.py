"""Where the agent's settings come from, and what each one means.

Sources, highest priority first:

1. keyword arguments (tests, the CLI);
2. environment variables ``COURTGUARD_AGENT_<FIELD>`` (nested:
   ``COURTGUARD_AGENT_DETECTORS__OUTREACH=false``);
3. the TOML file: ``--config``, else ``COURTGUARD_AGENT_CONFIG``, else
   ``/etc/courtguard/agent.toml``; a missing *default* file is fine, a missing
   explicit one is an error;
4. the defaults below.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Final, Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from agent.detectors.accounts.settings import AccountsSourceSettings
from agent.errors import ConfigError
from agent.frozen import is_frozen
from agent.layered_settings import LayeredSettings

DEFAULT_CONFIG: Final = Path("/etc/courtguard/agent.toml")
CONFIG_ENV: Final = "COURTGUARD_AGENT_CONFIG"
ENV_PREFIX: Final = "COURTGUARD_AGENT_"
MIB: Final = 1024 * 1024
#: Where the .deb (packaging/build_agent_deb.py) installs packaging/examples/agent.toml.
INSTALLED_EXAMPLE: Final = "/usr/share/doc/courtguard-agent/examples/agent.toml"


class AgentSettings(LayeredSettings):
    """Every knob of the agent daemon; see the module docstring for where values come from."""

    CONFIG_ENV: ClassVar[str] = CONFIG_ENV
    DEFAULT_CONFIG: ClassVar[Path] = DEFAULT_CONFIG
    CONFIG_ERROR: ClassVar[Callable[..., Exception]] = ConfigError
    WHAT: ClassVar[str] = "agent"
    #: The packaged agent has no source tree: the .deb ships the example as INSTALLED_EXAMPLE.
    EXAMPLE: ClassVar[str] = INSTALLED_EXAMPLE if is_frozen() else "packaging/examples/agent.toml"

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    data_dir: Path = Path("/var/lib/courtguard")
    policy_dir: Path = Path("/etc/courtguard/policies")
    hostname: str = Field(default_factory=socket.gethostname, min_length=1, max_length=253)
    allow_plain_http: bool = False
    #: Preseeded enrollment (``agent.preseed``): read by ``run`` when the agent has no
    #: credentials yet.
    enroll_file: Path = Path("/etc/courtguard/enroll.toml")
    #: Where the host fingerprint is read from (``agent.host_identity``); tests give a fake tree.
    identity_sysfs: Path = Path("/sys")

    heartbeat_interval_s: float = Field(default=60.0, gt=0, le=3600)
    spool_max_bytes: int = Field(default=64 * MIB, ge=64 * 1024)
    batch_max_events: int = Field(default=500, ge=1, le=5000)
    batch_max_bytes: int = Field(default=1 * MIB, ge=16 * 1024, le=64 * MIB)
    batch_max_age_s: float = Field(default=2.0, ge=0, le=600)
    drain_rate_eps: float = Field(default=2000.0, gt=0)
    drain_start_jitter_s: float = Field(default=5.0, ge=0, le=600)
    spool_poll_s: float = Field(default=1.0, gt=0, le=60)
    backoff_initial_s: float = Field(default=1.0, gt=0)
    backoff_max_s: float = Field(default=300.0, gt=0)
    #: Each read, write and wait for a pooled connection to the collector.
    http_timeout_s: float = Field(default=30.0, gt=0)
    #: TCP connect plus TLS handshake; short, so an attempt lost on a changed route is retried.
    connect_timeout_s: float = Field(default=10.0, gt=0, le=300)
    #: An idle connection to the collector is given up after this long. Above
    #: heartbeat_interval_s, so the heartbeats and event batches reuse one connection (no TLS
    #: handshake each); clearly below the collector's keep_alive_timeout_s (90 s) and any proxy's
    #: or firewall's idle timeout on the way, so the agent gives a connection up first. Below
    #: heartbeat_interval_s is allowed: every batch then opens a new connection.
    keepalive_expiry_s: float = Field(default=75.0, ge=0, le=3600)
    shutdown_flush_s: float = Field(default=5.0, ge=0, le=60)
    #: How often the signed policy bundle is polled (an ingest hint fetches sooner).
    policy_poll_s: float = Field(default=60.0, gt=0, le=86400)
    #: Pcaps (取证抓包) waiting on disk to be uploaded, in all; a capture that would pass it
    #: is not started and the refusal is logged.
    evidence_max_bytes: int = Field(default=64 * MIB, ge=0)
    #: Bytes per upload request of an evidence pcap.
    evidence_chunk_bytes: int = Field(default=256 * 1024, ge=4096, le=4 * MIB)
    #: How long the collector may hold a policy fetch that finds nothing new, answering as soon
    #: as a newer version is published (0: poll every ``policy_poll_s`` only).
    policy_wait_s: float = Field(default=50.0, ge=0, le=55)
    #: How often the holiday calendar's end is checked (first after one interval); the warning
    #: it makes goes out at most once a day however often this runs.
    calendar_check_interval_s: float = Field(default=3600.0, gt=0, le=86400)

    #: Signed agent upgrades (docs/upgrades.md): off, the agent never installs a release.
    upgrades: bool = True
    #: How long a new version has to report ready before the previous one is installed again.
    upgrade_health_timeout_s: float = Field(default=120.0, ge=5, le=3600)
    #: The command that installs a package, the package's path appended; unattended, so a
    #: changed agent.toml is kept without a question. Change it only where the agent is
    #: not installed by the system's dpkg.
    upgrade_install_command: tuple[str, ...] = ("dpkg", "--force-confdef", "--force-confold",
                                                "-i")
    #: The systemd unit the upgrader restarts when systemd runs.
    upgrade_service: str = "courtguard-agent.service"

    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    detectors: dict[str, bool] = Field(default_factory=dict)
    accounts: AccountsSourceSettings = Field(default_factory=AccountsSourceSettings)

    def detector_enabled(self, name: str) -> bool:
        """Detectors run unless the settings switch them off by name."""
        return self.detectors.get(name, True)

    @property
    def spool_path(self) -> Path:
        return self.data_dir / "spool.db"


def load_settings(config: Path | str | None = None, **overrides: Any) -> AgentSettings:
    """Build the settings from overrides, environment and TOML; raise ConfigError when unusable."""
    return AgentSettings.load(config, **overrides)
