"""The wire contract: one event model and one batch model, shared by agent and collector.

Everything that crosses the wire between a workstation and the collector is
defined here and nowhere else; the collector imports these models. The module
depends on pydantic and the standard library only, so a workstation never
pulls in the collector's stack.

An event is made on the agent:

1. a detector (or the daemon itself) returns a ``Finding``;
2. the spool turns it into an ``Event``, giving it a UUIDv7 id and the next
   per-agent sequence number in the same SQLite transaction that stores it;
3. the shipper sends events in sequence order inside an ``EventBatch``;
4. the collector validates the batch with the same models, stores each event
   once (idempotent on the agent and ``id``) and answers with an ``IngestResult``.

Validation refuses every value the collector's store cannot hold (``STORABLE``
below), so a batch that passes it never fails to store because of one event:
integers beyond signed 64 bits, NaN and infinite numbers, times whose UTC value
falls outside years 1 to 9999, text with NUL characters or lone surrogates, and
evidence nested deeper than ``MAX_EVIDENCE_DEPTH``.

Evidence is typed: kinds listed in ``EVIDENCE_MODELS`` have their evidence
validated against a model; other kinds carry a bounded JSON object, so an
agent newer than the collector is never refused for a kind it does not know.
"""

from __future__ import annotations

import ipaddress
import math
import os
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticSerializationError, to_json

# Re-exported: the policy language needs these without the wire contract's models.
from agent.event_fields import RULE_ID_PATTERN as RULE_ID_PATTERN
from agent.event_fields import RuleId as RuleId
from agent.event_fields import Severity as Severity

#: Largest evidence object, serialised, that one event may carry.
MAX_EVIDENCE_BYTES: Final = 16 * 1024
#: Most events one batch may carry; the collector refuses larger batches with 413.
MAX_BATCH_EVENTS: Final = 5000

#: What the store's columns hold: BIGINT integers, years 1 to 9999 in UTC, and text
#: without NUL (PostgreSQL text and JSONB refuse it) and without lone surrogates (not UTF-8).
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
#: Deepest nesting of objects and arrays in evidence; the JSON parsers stop near 200.
MAX_EVIDENCE_DEPTH: Final = 32

KIND_PATTERN: Final = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$"

Kind = Annotated[str, StringConstraints(pattern=KIND_PATTERN, max_length=64)]
HostName = Annotated[str, StringConstraints(min_length=1, max_length=253)]
Summary = Annotated[str, StringConstraints(min_length=1, max_length=500)]
PolicyVersion = Annotated[str, StringConstraints(min_length=1, max_length=64)]


_last_v7_ms = 0
_last_v7_counter = 0


def uuid7() -> uuid.UUID:
    """Return a time-ordered RFC 9562 UUIDv7 (the standard library has it only from 3.14).

    Within one millisecond a 12-bit counter in ``rand_a`` keeps ids from one
    process strictly increasing, so sorting by id follows creation order.
    """
    global _last_v7_ms, _last_v7_counter
    now_ms = time.time_ns() // 1_000_000
    if now_ms <= _last_v7_ms:
        _last_v7_counter += 1
        if _last_v7_counter > 0xFFF:  # counter exhausted: borrow the next millisecond
            _last_v7_ms += 1
            _last_v7_counter = 0
        now_ms = _last_v7_ms
    else:
        _last_v7_ms = now_ms
        _last_v7_counter = int.from_bytes(os.urandom(2), "big") & 0x3FF
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (now_ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= _last_v7_counter << 64
    value |= 0b10 << 62
    value |= rand_b
    return uuid.UUID(int=value)


def utcnow() -> datetime:
    return datetime.now(UTC)


def text_problem(value: str) -> str | None:
    """Why the store cannot hold this text (a NUL or a lone surrogate), or None."""
    if "\x00" in value:
        return "contains a NUL character, which the store cannot hold"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "contains a lone surrogate, which is not valid UTF-8"
    return None


def json_problem(value: object, depth: int = 1) -> tuple[list[str | int], str] | None:
    """Where and why the store cannot hold this JSON value, or None when it can.

    ``depth`` counts the objects and arrays around ``value``; the path leads
    from ``value`` down to the offending item.
    """
    if isinstance(value, str):
        problem = text_problem(value)
        return None if problem is None else ([], problem)
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        if INT64_MIN <= value <= INT64_MAX:
            return None
        return [], "is an integer beyond signed 64 bits"
    if isinstance(value, float):
        return None if math.isfinite(value) else ([], "is NaN or infinite")
    if depth > MAX_EVIDENCE_DEPTH:
        return [], f"is nested deeper than {MAX_EVIDENCE_DEPTH} levels"
    if isinstance(value, dict):
        for key, item in value.items():
            problem = text_problem(key)
            if problem is not None:
                return [key], f"(a key) {problem}"
            found = json_problem(item, depth + 1)
            if found is not None:
                return [key, *found[0]], found[1]
        return None
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = json_problem(item, depth + 1)
            if found is not None:
                return [index, *found[0]], found[1]
        return None
    return [], f"is a {type(value).__name__}, not JSON"


#: Serialised evidence with every digit as ``0`` and everything else as a space: a run of
#: 19 zeros is a 64-bit-sized integer. One translate and one substring search cost a
#: seventh of a regex over the same bytes, on every event of every batch.
_DIGITS_AS_ZERO: Final = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_NUMBER: Final = b"0" * 19


def _hints_unstorable(raw: bytes) -> bool:
    """Whether serialised evidence may hold a NUL, NaN, an infinity or a 64-bit-sized integer."""
    return (b"\\u0000" in raw or b"NaN" in raw or b"Infinity" in raw
            or _LONG_NUMBER in raw.translate(_DIGITS_AS_ZERO))


def storable_evidence(value: dict[str, JsonValue]) -> dict[str, JsonValue]:
    """Refuse evidence the store cannot hold, naming the path to the first bad value."""
    found = json_problem(value)
    if found is not None:
        # Escaped and cut short: the path is echoed in the collector's answer and the agent's log.
        path = ".".join(str(part) for part in found[0]).encode("unicode_escape").decode()
        raise ValueError(f"evidence.{path[:200]} {found[1]}" if path else f"evidence {found[1]}")
    return value


def storable_text(value: str | None) -> str | None:
    if value is not None:
        problem = text_problem(value)
        if problem is not None:
            raise ValueError(problem)
    return value


def storable_time(value: datetime | None) -> datetime | None:
    """Refuse a time whose UTC value lies outside years 1 to 9999 (the store keeps UTC)."""
    if value is not None:
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise ValueError("time is outside years 1 to 9999 once converted to UTC") from None
    return value


class Evidence(BaseModel):
    """Base of typed evidence models: strict about keys so typos surface in tests.

    ``FINGERPRINT_FIELDS`` names the evidence fields (dotted paths into the
    evidence object) that, with the rule, host and account, make two events
    the same alert at the collector (docs/alerts.md). Empty: rule, host and
    account alone decide.

    Validators are built at first use (``defer_build``): a process builds only
    the evidence models of the events it meets, not every detector's.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    FINGERPRINT_FIELDS: ClassVar[tuple[str, ...]] = ()


class DetectorHealth(BaseModel):
    """One detector's state as the heartbeat reports it."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    state: Annotated[str, StringConstraints(pattern=r"^(ok|degraded|disabled|failed)$")]
    reason: Annotated[str, StringConstraints(max_length=500)] | None = None


PolicySource = Literal["collector", "last_good", "local"]


class PolicyAppliedEvidence(Evidence):
    """A policy bundle the agent verified and now runs on."""

    version: PolicyVersion
    previous_version: PolicyVersion | None = None
    group: Annotated[str, StringConstraints(max_length=64)] | None = None
    #: collector: fetched now; last_good: the copy on disk, collector unreachable; local: policy_dir
    source: PolicySource
    kinds: list[Annotated[str, StringConstraints(max_length=64)]] = Field(max_length=64)
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] | None = None


class PolicyRejectedEvidence(Evidence):
    """A bundle the agent refused; it keeps running on ``applied_version``."""

    reason_code: Literal[
        "bad_signature", "malformed", "older_version", "other_group", "invalid_policy",
        "not_applicable",
    ]
    reason: Annotated[str, StringConstraints(max_length=500)]
    version: PolicyVersion | None = None
    group: Annotated[str, StringConstraints(max_length=64)] | None = None
    applied_version: PolicyVersion | None = None
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] | None = None


class UpgradeFailedEvidence(Evidence):
    """An agent release the agent refused, or installed and had to take back."""

    #: refused: a check failed before anything was installed; install: the package manager
    #: failed; health: the new version did not report healthy in time (both rolled back).
    stage: Literal["refused", "install", "health"]
    reason_code: Literal[
        "bad_signature", "malformed", "other_package", "other_arch", "other_group",
        "older_version", "install_failed", "not_healthy", "no_rollback_package",
    ]
    reason: Annotated[str, StringConstraints(max_length=500)]
    version: Annotated[str, StringConstraints(max_length=64)] | None = None
    running_version: Annotated[str, StringConstraints(max_length=64)]
    #: Whether the previous package was installed again (None: nothing had been installed).
    rolled_back: bool | None = None
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] | None = None


class HeartbeatEvidence(Evidence):
    """What ``agent.heartbeat`` carries: enough to see an agent's health from the console."""

    agent_version: Annotated[str, StringConstraints(max_length=64)]
    uptime_s: float = Field(ge=0)
    interval_s: float = Field(gt=0)
    policy_version: PolicyVersion | None = None
    spool_depth: int = Field(ge=0)
    spool_bytes: int = Field(ge=0)
    events_dropped: int = Field(ge=0)
    #: Events the collector refused as invalid, kept aside on the agent (lifetime count).
    events_quarantined: int = Field(default=0, ge=0)
    rss_bytes: int = Field(ge=0)
    cpu_percent: float = Field(ge=0)
    detectors: dict[Annotated[str, StringConstraints(max_length=64)], DetectorHealth] = Field(
        default_factory=dict, max_length=64
    )
    #: The last bundle the agent refused since it applied one, with the reason.
    policy_rejected: PolicyRejectedEvidence | None = None


class StartedEvidence(Evidence):
    agent_version: Annotated[str, StringConstraints(max_length=64)]
    pid: int = Field(ge=0)
    policy_version: PolicyVersion | None = None
    detectors: list[Annotated[str, StringConstraints(max_length=64)]] = Field(max_length=64)


class StoppingEvidence(Evidence):
    reason: Annotated[str, StringConstraints(max_length=200)]
    uptime_s: float = Field(ge=0)


class SpoolDroppedEvidence(Evidence):
    """Counts of events the full spool dropped, by severity, since the last such event."""

    dropped: dict[Severity, int]
    spool_max_bytes: int = Field(ge=0)


class DetectorDegradedEvidence(Evidence):
    FINGERPRINT_FIELDS: ClassVar[tuple[str, ...]] = ("detector",)

    detector: Annotated[str, StringConstraints(max_length=64)]
    state: Annotated[str, StringConstraints(pattern=r"^(degraded|failed)$")]
    reason: Annotated[str, StringConstraints(max_length=500)]


class CalendarCoverageEvidence(Evidence):
    """``*.calendar_expiring`` / ``*.calendar_expired``: the holiday calendar is running out.

    Made by the agent (``agent.``) and by the collector (``collector.``), at
    most once a day each; a new ``covered_until`` (a year added) is a new alert.
    """

    FINGERPRINT_FIELDS: ClassVar[tuple[str, ...]] = ("covered_until",)

    covered_until: date
    library_until: date
    policy_years: list[int] = Field(default_factory=list, max_length=20)
    days_left: int


class PublishedFinding(BaseModel):
    """One finding in a published document, masked as the checker masks it."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    rule_id: Annotated[str, StringConstraints(max_length=128)]
    action: Annotated[str, StringConstraints(max_length=32)]
    part: Annotated[str, StringConstraints(max_length=64)]
    excerpt: Annotated[str, StringConstraints(max_length=200)]
    detail: Annotated[str, StringConstraints(max_length=500)]
    line: int | None = Field(default=None, ge=1)
    column: int | None = Field(default=None, ge=1)


class PublishedDocumentEvidence(Evidence):
    """``collector.document_published``: a document already public that should be withdrawn
    (``withdraw``: not to be published at all) or corrected (``correct``: needs redaction).

    Made by the collector's patrol of published documents; one alert per
    document (``source`` and ``document``), which the patrol closes when the
    document is gone from the source or checks clean. ``document`` is the
    path or URL with any personal data in the file name masked.
    """

    FINGERPRINT_FIELDS: ClassVar[tuple[str, ...]] = ("source", "document")

    source: Annotated[str, StringConstraints(max_length=64)]
    document: Annotated[str, StringConstraints(max_length=2048)]
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    size: int = Field(ge=0)
    verdict: Literal["do_not_publish", "needs_redaction"]
    recommendation: Literal["withdraw", "correct"]
    profile: Annotated[str, StringConstraints(max_length=32)]
    rules: list[Annotated[str, StringConstraints(max_length=128)]] = Field(max_length=100)
    findings_total: int = Field(ge=1)
    findings: list[PublishedFinding] = Field(max_length=50)


class SilentEvidence(Evidence):
    """Made by the collector when an agent missed several heartbeats."""

    last_seen: AwareDatetime
    interval_s: float = Field(gt=0)
    missed_heartbeats: int = Field(ge=1)


class ExportLagEvidence(Evidence):
    """``collector.export_lagging`` / ``collector.export_recovered``: a SIEM output fell behind.

    Made by the collector once when an output passes its lag threshold and once
    when it has caught up again (docs/export.md).
    """

    FINGERPRINT_FIELDS: ClassVar[tuple[str, ...]] = ("output",)

    output: Annotated[str, StringConstraints(max_length=64)]
    lag_s: float = Field(ge=0)
    lag_events: int = Field(ge=0)
    threshold_s: float = Field(ge=0)
    since: AwareDatetime
    last_error: Annotated[str, StringConstraints(max_length=500)] | None = None


class TestEvidence(Evidence):
    """Carried by ``agent.test``: events an operator makes to check the pipeline end to end."""

    __test__: ClassVar[bool] = False  # not a pytest test class
    note: Annotated[str, StringConstraints(max_length=200)] = ""
    index: int = Field(default=0, ge=0)
    padding: Annotated[str, StringConstraints(max_length=8192)] = ""


class IsolationEvidence(Evidence):
    """``outreach.isolation_applied`` / ``_lifted`` / ``_refused``: a signed isolation order.

    Carried out (applied, lifted on a lift order or at its expiry) or refused by
    the agent; ``order_id`` and ``isolation_id`` tie the event to the
    collector's isolation record.
    """

    FINGERPRINT_FIELDS: ClassVar[tuple[str, ...]] = ("isolation_id",)

    order_id: uuid.UUID | None = None
    sequence: int | None = Field(default=None, ge=1)
    isolation_id: int | None = Field(default=None, ge=1)
    action: Literal["isolate", "lift"] | None = None
    #: order: a new order; restart: re-applied at agent start; expired: ended by its own time.
    cause: Literal["order", "restart", "expired"] | None = None
    expires_at: AwareDatetime | None = None
    requested_by: Annotated[str, StringConstraints(max_length=100)] | None = None
    approved_by: Annotated[str, StringConstraints(max_length=100)] | None = None
    reason: Annotated[str, StringConstraints(max_length=500)] | None = None
    #: Whether the kernel table is in the state the order asks for.
    ok: bool = True
    error: Annotated[str, StringConstraints(max_length=500)] | None = None
    #: For ``_refused``: bad_signature, malformed, other_agent, replayed or expired.
    reason_code: Annotated[str, StringConstraints(max_length=32)] | None = None
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] | None = None


#: The kinds with a fixed evidence shape that no detector makes: the agent's own events,
#: and the collector's about agents, calendars, policies and its SIEM outputs.
AGENT_EVIDENCE_MODELS: Final[Mapping[str, type[Evidence]]] = MappingProxyType({
    "agent.heartbeat": HeartbeatEvidence,
    "agent.started": StartedEvidence,
    "agent.stopping": StoppingEvidence,
    "agent.spool_dropped": SpoolDroppedEvidence,
    "agent.detector_degraded": DetectorDegradedEvidence,
    "agent.silent": SilentEvidence,
    "agent.calendar_expiring": CalendarCoverageEvidence,
    "agent.calendar_expired": CalendarCoverageEvidence,
    "collector.calendar_expiring": CalendarCoverageEvidence,
    "collector.calendar_expired": CalendarCoverageEvidence,
    "agent.policy_applied": PolicyAppliedEvidence,
    "agent.policy_rejected": PolicyRejectedEvidence,
    "agent.upgrade_failed": UpgradeFailedEvidence,
    "collector.policy_rejected": PolicyRejectedEvidence,
    "collector.document_published": PublishedDocumentEvidence,
    "collector.export_lagging": ExportLagEvidence,
    "collector.export_recovered": ExportLagEvidence,
    "agent.test": TestEvidence,
    "outreach.isolation_applied": IsolationEvidence,
    "outreach.isolation_lifted": IsolationEvidence,
    "outreach.isolation_refused": IsolationEvidence,
})

#: Every kind whose evidence has a fixed shape, as ``Event`` validates it. It starts with
#: ``AGENT_EVIDENCE_MODELS``; ``agent.registry`` adds each detector's
#: (``DetectorSpec.evidence_models``) when it is imported, which the agent's daemon and spool
#: and the collector's package do, so every event they validate sees the whole table. Filled,
#: not imported: detectors import this module, so it can import none of them.
EVIDENCE_MODELS: Final[dict[str, type[Evidence]]] = dict(AGENT_EVIDENCE_MODELS)


def register_evidence_models(models: Mapping[str, type[Evidence]]) -> None:
    """Add a detector's kinds to ``EVIDENCE_MODELS``; a kind bound to another model is an error."""
    for kind, model in models.items():
        if EVIDENCE_MODELS.setdefault(kind, model) is not model:
            raise ValueError(
                f"evidence kind {kind} is declared twice: "
                f"{EVIDENCE_MODELS[kind].__name__} and {model.__name__}"
            )


#: Capture bounds every order is clamped to, on the agent and at the collector.
MAX_CAPTURE_SECONDS: Final = 300.0
MAX_CAPTURE_PACKETS: Final = 100_000
MAX_CAPTURE_BYTES: Final = 64 * 1024 * 1024
#: An interface name as the kernel allows it (IFNAMSIZ - 1 characters, no slash or space).
INTERFACE_NAME_PATTERN: Final = r"^[A-Za-z0-9_.:@-]{1,15}$"


class CaptureOrder(BaseModel):
    """A bounded packet capture (取证抓包) tied to one event.

    A detector attaches one to a finding (the event id is then the spool's); the
    collector sends admins' orders in ``IngestResult.capture_orders`` with the
    event id set. The capture keeps the traffic to or from ``peer``, on
    ``interface`` when one is named (on every interface otherwise); at least one
    of the two is set. Headers only unless ``payload``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    event_id: uuid.UUID | None = None
    peer: Annotated[str, StringConstraints(max_length=45)] | None = None
    interface: Annotated[str, StringConstraints(pattern=INTERFACE_NAME_PATTERN)] | None = None
    duration_s: float = Field(default=30.0, gt=0, le=MAX_CAPTURE_SECONDS)
    max_packets: int = Field(default=1000, ge=1, le=MAX_CAPTURE_PACKETS)
    max_bytes: int = Field(default=8 * 1024 * 1024, ge=4096, le=MAX_CAPTURE_BYTES)
    payload: bool = False

    @field_validator("peer")
    @classmethod
    def _peer_is_an_address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return str(ipaddress.ip_address(value))

    @model_validator(mode="after")
    def _has_a_target(self) -> CaptureOrder:
        if self.peer is None and self.interface is None:
            raise ValueError("a capture order names a peer address, an interface or both")
        return self


class Finding(BaseModel):
    """What a detector decides: an event without the identity the spool gives it.

    ``capture`` is not part of the event: the daemon starts it once the spool
    gave the event its id.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    kind: Kind
    severity: Severity
    summary: Summary
    rule_id: RuleId | None = None
    evidence: dict[str, JsonValue] = Field(default_factory=dict)
    time: AwareDatetime | None = None
    capture: CaptureOrder | None = None

    @field_validator("evidence", mode="before")
    @classmethod
    def _dump_evidence_model(cls, value: Any) -> Any:
        if isinstance(value, BaseModel):
            return value.model_dump(mode="json", exclude_none=True)
        return value

    # The spool turns a finding into an event: refuse here what the event would refuse.
    _storable_evidence = field_validator("evidence")(storable_evidence)
    _storable_text = field_validator("summary")(storable_text)
    _storable_time = field_validator("time")(storable_time)


class Event(BaseModel):
    """One thing that happened on a workstation (or, for ``agent.silent``, at the collector).

    ``seq`` is the agent's own monotonic counter: present on every event an
    agent sends, absent on events the collector makes.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    id: uuid.UUID
    seq: int | None = Field(default=None, ge=1, le=INT64_MAX)
    time: AwareDatetime
    agent_id: uuid.UUID
    host: HostName
    kind: Kind
    severity: Severity
    rule_id: RuleId | None = None
    policy_version: PolicyVersion | None = None
    summary: Summary
    evidence: dict[str, JsonValue] = Field(default_factory=dict)

    @field_validator("evidence")
    @classmethod
    def _bounded_evidence(cls, value: dict[str, JsonValue]) -> dict[str, JsonValue]:
        # pydantic_core's serialiser is several times faster than json.dumps on ingest's hot
        # path; the walk that names an unstorable value runs only when its output hints at one.
        try:
            raw = to_json(value)
        except PydanticSerializationError:  # a lone surrogate
            return storable_evidence(value)
        if _hints_unstorable(raw) or raw.count(b"{") + raw.count(b"[") > MAX_EVIDENCE_DEPTH:
            storable_evidence(value)
        if len(raw) > MAX_EVIDENCE_BYTES:
            raise ValueError(f"evidence is larger than {MAX_EVIDENCE_BYTES} bytes")
        return value

    _storable_text = field_validator("host", "summary", "policy_version")(storable_text)
    _storable_time = field_validator("time")(storable_time)

    @model_validator(mode="after")
    def _typed_evidence(self) -> Event:
        model = EVIDENCE_MODELS.get(self.kind)
        if model is not None:
            model.model_validate(self.evidence)
        return self

    def typed_evidence(self) -> Evidence | None:
        """The evidence as its kind's model, or None for kinds without one."""
        model = EVIDENCE_MODELS.get(self.kind)
        return None if model is None else model.model_validate(self.evidence)


class EventBatch(BaseModel):
    """What the shipper POSTs to ``/api/v1/events``: one agent's events in sequence order."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    agent_id: uuid.UUID
    sent_at: AwareDatetime
    events: list[Event] = Field(min_length=1, max_length=MAX_BATCH_EVENTS)

    @model_validator(mode="after")
    def _one_agent(self) -> EventBatch:
        for index, event in enumerate(self.events):
            if event.agent_id != self.agent_id:
                raise ValueError(f"events[{index}].agent_id differs from the batch's agent_id")
            if event.seq is None:
                raise ValueError(f"events[{index}].seq is missing")
        return self

    def repeated_seqs(self) -> list[int]:
        """Indexes of events whose seq an earlier event with another id already took.

        An agent numbers each event once, so the store keeps one event per agent
        and seq; the collector refuses these by index (422).
        """
        first_id: dict[int | None, uuid.UUID] = {}
        repeated: list[int] = []
        for index, event in enumerate(self.events):
            if first_id.setdefault(event.seq, event.id) != event.id:
                repeated.append(index)
        return repeated


#: Request header naming the optional ``IngestResult`` fields an agent reads
#: (comma-separated); the collector sends such a field only to an agent that names it.
ACCEPTS_HEADER: Final = "X-Courtguard-Accepts"


class IngestResult(BaseModel):
    """The collector's acknowledgement: every id in either list is safe to delete from the spool.

    Fields this agent does not know are ignored, so a newer collector's hints never
    make an acknowledgement unreadable (agents before this rule refuse them: the
    collector leaves a field out when it has nothing to say).
    """

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    accepted: list[uuid.UUID]
    duplicates: list[uuid.UUID]
    policy_version: PolicyVersion | None = None
    #: Captures admins asked for on this agent's events, until it starts uploading them.
    #: Sent only to an agent naming it in ``ACCEPTS_HEADER`` and left out when empty: an
    #: agent that predates it refuses an answer with a field it does not know.
    capture_orders: list[CaptureOrder] = Field(default_factory=list, max_length=16)
    #: The newest isolation order's sequence for this agent (left out when it has none):
    #: an agent that accepted a lower one fetches ``GET /api/v1/isolation``.
    isolation_sequence: int | None = Field(default=None, ge=1)
    #: The newest agent release row for this agent's group (left out when there is none):
    #: an agent that has not looked at it asks ``GET /api/v1/release``.
    release_sequence: int | None = Field(default=None, ge=1)


class EnrollRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    token: Annotated[str, StringConstraints(min_length=8, max_length=200)]
    hostname: HostName
    agent_version: Annotated[str, StringConstraints(max_length=64)]
    os: Annotated[str, StringConstraints(max_length=200)] = ""
    #: SHA-256 (hex) of what identifies the machine across a re-image
    #: (``agent.host_identity``); None from an agent that predates it, which never supersedes.
    host_fingerprint: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] | None = None


class EnrollResponse(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    agent_id: uuid.UUID
    secret: Annotated[str, StringConstraints(min_length=32, max_length=200)]
    group: Annotated[str, StringConstraints(max_length=64)]
    #: The collector's policy signing key as policy-key text (``agent.signing.PublicKey``):
    #: base64 of an Ed25519 key, or ``sm2:`` and base64 of an SM2 point. The agent pins it.
    policy_key: Annotated[str, StringConstraints(max_length=128)] | None = None
    #: The earlier agent of the same host this enrollment took the place of; left out of the
    #: answer when there is none, so an agent that predates the field still reads it.
    superseded_agent_id: uuid.UUID | None = None


class ErrorBody(BaseModel):
    """Every error the collector's API returns has this shape."""

    error: str
    detail: str
    errors: list[dict[str, Any]] | None = None
