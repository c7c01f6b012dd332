"""The accounts detector's knobs: ``[accounts]`` in agent.toml, ``COURTGUARD_AGENT_ACCOUNTS__*``."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class AccountsSourceSettings(BaseModel):
    """Where the accounts sources look and how often they poll what has no change event."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Follow the systemd journal first; the auth log files are the fallback.
    journal: bool = True
    #: Syslog files tailed when the journal cannot be read (Debian/UOS/Kylin, then RHEL).
    auth_logs: list[Path] = Field(
        default_factory=lambda: [Path("/var/log/auth.log"), Path("/var/log/secure")]
    )
    #: A busy log is read at most this often: each read that finds a contractor line costs a
    #: spool commit and a cursor write, so a shorter poll buys latency with CPU.
    auth_poll_s: float = Field(default=1.0, gt=0, le=60)
    session_poll_s: float = Field(default=5.0, gt=0, le=600)
    #: Listen to the kernel's process connector (root): a new program wakes the reader, no
    #: timer runs. Off, or where it cannot be opened, new pids are scanned every process_poll_s.
    process_events: bool = True
    process_poll_s: float = Field(default=2.0, gt=0, le=600)
    #: Group membership has no change event for directory services (SSSD): re-check this often.
    group_recheck_s: float = Field(default=300.0, gt=0, le=86_400)
    #: Largest executable hashed for a forbidden-program event.
    hash_max_bytes: int = Field(default=256 * 1024 * 1024, ge=0)
    #: Where user crontabs live (Debian: crontabs/, RHEL: cron/).
    crontab_dirs: list[Path] = Field(
        default_factory=lambda: [Path("/var/spool/cron/crontabs"), Path("/var/spool/cron")]
    )
