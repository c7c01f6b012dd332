"""``[[export.outputs]]`` in collector.toml: where events go, in which format, which ones.

One table per output; ``name`` is its key in the store (its cursor), so
renaming an output starts it afresh.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from agent.events import Severity

OutputType = Literal["syslog-tls", "https-ndjson"]
OutputFormat = Literal["cef", "ecs"]
#: The first part of an event's kind: what the console's reports call a family.
Pillar = Literal["outreach", "account", "document", "agent", "collector"]


class OutputFilter(BaseModel):
    """Which records an output takes; an empty list lets everything through."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Kinds taken: exact (``outreach.flow``) or a family (``account.*``).
    kinds: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=256)
    #: Kinds never taken, in the same notation; heartbeats only prove liveness.
    exclude_kinds: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(
        default_factory=lambda: ["agent.heartbeat"], max_length=256)
    severities: list[Severity] = Field(default_factory=list)
    pillars: list[Pillar] = Field(default_factory=list)

    def takes(self, kind: str, severity: Severity) -> bool:
        if self.severities and severity not in self.severities:
            return False
        if self.pillars and kind.split(".", 1)[0] not in self.pillars:
            return False
        if self.kinds and not _any_matches(self.kinds, kind):
            return False
        return not _any_matches(self.exclude_kinds, kind)


def _any_matches(patterns: list[str], kind: str) -> bool:
    for pattern in patterns:
        if pattern.endswith(".*"):
            if kind.startswith(pattern[:-1]):
                return True
        elif pattern == kind:
            return True
    return False


class OutputSettings(OutputFilter):
    """One output: ``syslog-tls`` (CEF or ECS JSON in RFC 5424) or ``https-ndjson`` (ECS)."""

    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    type: OutputType
    format: OutputFormat = "ecs"
    #: syslog-tls: the receiver's host and port (6514 is syslog over TLS's own port).
    host: str | None = None
    port: int = Field(default=6514, ge=1, le=65535)
    #: The name the receiver's certificate must carry; the host when empty.
    server_name: str | None = None
    #: https-ndjson: where batches are POSTed.
    url: str | None = None
    #: Extra HTTP headers (e.g. an Authorization the receiver asks for).
    headers: dict[str, str] = Field(default_factory=dict, repr=False)
    #: The CA that signed the receiver's certificate (PEM); the system's CAs when empty.
    ca_file: Path | None = None
    #: Client certificate and key (PEM) when the receiver wants one (mutual TLS).
    client_cert: Path | None = None
    client_key: Path | None = None
    #: Include alert changes (opened, raised, status changed, assigned) besides events.
    alert_changes: bool = True
    #: Where a new output starts: every stored event, or only those stored from now on.
    start: Literal["beginning", "now"] = "beginning"
    #: Records read, sent and acknowledged at once; all an output ever holds in memory.
    batch_size: int = Field(default=500, ge=1, le=5000)
    #: Records a second at most (token bucket, ``burst`` saved up).
    rate_per_s: float = Field(default=2000.0, gt=0, le=1_000_000)
    burst: int = Field(default=2000, ge=1, le=1_000_000)
    timeout_s: float = Field(default=10.0, gt=0, le=300)
    #: Back-off after a failed send: full jitter, doubling from the first up to the max.
    retry_initial_s: float = Field(default=1.0, gt=0, le=3600)
    retry_max_s: float = Field(default=60.0, gt=0, le=86_400)
    #: How often a caught-up output looks for new records.
    poll_interval_s: float = Field(default=1.0, gt=0, le=60)
    #: Past this many seconds behind the newest stored event, a collector.export_lagging
    #: event (an alert) is raised once, and collector.export_recovered when it catches up.
    lag_alert_s: float = Field(default=900.0, gt=0)
    #: syslog: facility number (RFC 5424; 16-23 are local0-local7) and APP-NAME.
    facility: int = Field(default=13, ge=0, le=23)  # 13: log audit
    app_name: Annotated[str, StringConstraints(pattern=r"^[!-~]{1,48}$")] = "courtguard"

    @model_validator(mode="after")
    def _needs(self) -> OutputSettings:
        if self.type == "syslog-tls" and not self.host:
            raise ValueError(f"syslog-tls output {self.name} needs host")
        if self.type == "https-ndjson":
            if not self.url or not self.url.startswith("https://"):
                raise ValueError(f"https-ndjson output {self.name} needs an https:// url")
            if self.format != "ecs":
                raise ValueError(f"https-ndjson output {self.name} sends ECS JSON: format = ecs")
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError(f"output {self.name}: client_cert and client_key go together")
        if self.retry_max_s < self.retry_initial_s:
            raise ValueError(f"output {self.name}: retry_max_s is below retry_initial_s")
        return self


class ExportSettings(BaseModel):
    """``[export]``: the outputs and how often their lag is checked."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    outputs: list[OutputSettings] = Field(default_factory=list, max_length=32)
    #: On PostgreSQL, the longest a gap in event row ids holds an output while a transaction
    #: that was running when the gap was seen is still running (docs/export.md).
    gap_wait_s: float = Field(default=60.0, ge=0, le=3600)

    @model_validator(mode="after")
    def _unique_names(self) -> ExportSettings:
        names = [o.name for o in self.outputs]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"export output names repeat: {', '.join(repeated)}")
        return self
