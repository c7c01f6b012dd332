"""Events and alert changes in Elastic Common Schema: the one field mapping every output uses.

docs/ecs.md is this module in prose. ``event_to_ecs`` maps the fields every
event has (time, id, kind, severity, host, agent...) and then, through
``EVIDENCE_FIELDS``, the evidence fields that have an ECS home (addresses,
ports, processes, accounts, files, devices); the whole evidence stays under
``courtguard.evidence`` as well, so nothing is lost to a SIEM that reads only
ECS. CEF (``collector.export.cef``) is a projection of this document, so the
two formats never disagree.

Every evidence model in ``agent.registry.EVIDENCE_MODELS`` has an entry in
``EVIDENCE_FIELDS`` (possibly empty: nothing beyond ``courtguard.evidence``);
``tests/collector/export/test_ecs.py`` checks that, and that every path named
exists in its model.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

from agent.detectors.accounts import evidence as accounts
from agent.detectors.documents import evidence as documents
from agent.detectors.outreach import evidence as outreach
from agent.events import (
    CalendarCoverageEvidence,
    DetectorDegradedEvidence,
    Evidence,
    ExportLagEvidence,
    HeartbeatEvidence,
    IsolationEvidence,
    PolicyAppliedEvidence,
    PolicyRejectedEvidence,
    PublishedDocumentEvidence,
    Severity,
    SilentEvidence,
    SpoolDroppedEvidence,
    StartedEvidence,
    StoppingEvidence,
    TestEvidence,
    UpgradeFailedEvidence,
)

#: ECS ``event.severity`` is numeric; these are the values courtguard's severities map to.
ECS_SEVERITY: Final[Mapping[Severity, int]] = {
    Severity.INFO: 1,
    Severity.LOW: 21,
    Severity.MEDIUM: 47,
    Severity.HIGH: 73,
    Severity.CRITICAL: 99,
}

#: ``event.category`` by family (the first part of the kind).
ECS_CATEGORY: Final[Mapping[str, str]] = {
    "outreach": "network",
    "account": "authentication",
    "document": "file",
    "agent": "host",
    "collector": "host",
}


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _outcome(value: Any) -> Any:
    """ECS ``event.outcome`` takes success, failure or unknown only."""
    if value is True or value == "success":
        return "success"
    if value is False or value == "failure":
        return "failure"
    return None


def _listed(value: Any) -> Any:
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class To:
    """Where one evidence field goes in ECS, and how its value is converted on the way."""

    field: str
    convert: Callable[[Any], Any] | None = None


Fields = Mapping[str, "str | To"]

_ACCOUNT: Final[Fields] = {"account": "user.name", "role": To("user.roles", _listed)}
_PROCESS: Final[Fields] = {
    "process.pid": "process.pid", "process.name": "process.name",
    "process.exe": "process.executable", "process.cmdline": "process.command_line",
    "process.user": "user.name",
}
_OUTREACH: Final[Fields] = {
    "interface": "observer.egress.interface.name", "interface_mac": "host.mac",
    "first_seen": "event.start", "last_seen": "event.end",
}
_DOCUMENT: Final[Fields] = {
    "file_name": "file.name", "folder": "file.directory", "sha256": "file.hash.sha256",
    "size": "file.size",
}

#: Evidence field (dotted path inside the evidence) to ECS field, per evidence model.
EVIDENCE_FIELDS: Final[Mapping[type[Evidence], Fields]] = {
    # the agent's own kinds and the collector's
    HeartbeatEvidence: {"agent_version": "agent.version"},
    StartedEvidence: {"agent_version": "agent.version", "pid": "process.pid"},
    StoppingEvidence: {},
    SpoolDroppedEvidence: {},
    DetectorDegradedEvidence: {"reason": "error.message"},
    SilentEvidence: {"last_seen": "event.start"},
    CalendarCoverageEvidence: {},
    PolicyAppliedEvidence: {},
    PolicyRejectedEvidence: {"reason_code": "error.code", "reason": "error.message"},
    UpgradeFailedEvidence: {"reason_code": "error.code", "reason": "error.message",
                            "version": "package.version", "sha256": "file.hash.sha256"},
    ExportLagEvidence: {"since": "event.start", "last_error": "error.message"},
    PublishedDocumentEvidence: {
        "document": "url.original", "sha256": "file.hash.sha256", "size": "file.size",
    },
    TestEvidence: {},
    # outreach (违规外联)
    outreach.FlowEvidence: {
        **_OUTREACH, **_PROCESS, "protocol": To("network.transport", _lower),
        "local_address": "source.ip", "local_port": "source.port",
        "remote_address": "destination.ip", "remote_port": "destination.port",
        "query_name": "dns.question.name", "uid": "user.id", "gid": "group.id",
        "process.sha256": "process.hash.sha256",
    },
    outreach.InterfaceEvidence: {**_OUTREACH},
    outreach.AddressEvidence: {**_OUTREACH, "address": "host.ip"},
    outreach.RouteEvidence: {**_OUTREACH, "source_address": "source.ip"},
    outreach.DnsAnswerEvidence: {
        **_OUTREACH, "resolver": "server.ip", "name": "dns.question.name",
        "outside_addresses": "dns.resolved_ip",
    },
    outreach.ProxyEvidence: {**_OUTREACH, "proxy_host": "destination.domain"},
    outreach.SharingEvidence: {**_OUTREACH},
    outreach.ProbeEvidence: {**_OUTREACH, "target": "destination.address",
                             "port": "destination.port"},
    outreach.ActionEvidence: {"target": "destination.address", "ok": To("event.outcome", _outcome)},
    outreach.FloodEvidence: {"window_start": "event.start", "window_end": "event.end"},
    outreach.LostEvidence: {},
    IsolationEvidence: {
        "action": "event.action", "expires_at": "event.end", "ok": To("event.outcome", _outcome),
        "reason_code": "error.code", "error": "error.message", "sha256": "file.hash.sha256",
    },
    # accounts (外包账号)
    accounts.AccountLoginEvidence: {**_ACCOUNT, "service": "service.name",
                                    "remote_host": "source.address"},
    accounts.AccountSessionEvidence: {**_ACCOUNT, "service": "service.name",
                                      "remote_host": "source.address"},
    accounts.AccountPrivilegeEvidence: {
        **_ACCOUNT, "tool": "process.name", "outcome": To("event.outcome", _outcome),
        "target": "user.target.name", "command": "process.command_line",
    },
    accounts.AccountGroupEvidence: {**_ACCOUNT, "groups": "user.group.name"},
    accounts.AccountChangeEvidence: {**_ACCOUNT, "target": "user.target.name",
                                     "group": "user.target.group.name"},
    accounts.AccountProgramEvidence: {
        **_ACCOUNT, "pid": "process.pid", "name": "process.name", "exe": "process.executable",
        "cmdline": "process.command_line", "sha256": "process.hash.sha256",
    },
    accounts.AccountRemovableEvidence: {
        **_ACCOUNT, "device": "device.id", "vendor_id": "device.manufacturer",
        "product_id": "device.model.identifier", "serial": "device.serial_number",
        "mountpoint": "file.directory",
    },
    accounts.AccountFileEvidence: {**_ACCOUNT, "path": "file.path"},
    accounts.AccountBurstEvidence: {**_ACCOUNT, "first_failure": "event.start",
                                    "last_failure": "event.end",
                                    "remote_hosts": "source.address"},
    accounts.AccountTamperEvidence: {**_ACCOUNT, "path": "file.path"},
    accounts.AccountSharedEvidence: {**_ACCOUNT, "hosts": "related.hosts", "since": "event.start"},
    accounts.AccountFirstSeenEvidence: {**_ACCOUNT, "host": "related.hosts"},
    accounts.AccountScoreEvidence: {**_ACCOUNT, "score": "event.risk_score",
                                    "hosts": "related.hosts"},
    # documents (裁判文书)
    documents.DocumentFindingEvidence: {**_DOCUMENT},
    documents.DocumentUnreadableEvidence: {**_DOCUMENT, "error": "error.message"},
}


class EventLike(Protocol):
    """What an event needs for the mapping: an ``agent.events.Event`` or a stored row."""

    @property
    def id(self) -> uuid.UUID | str: ...
    @property
    def seq(self) -> int | None: ...
    @property
    def time(self) -> datetime: ...
    @property
    def agent_id(self) -> uuid.UUID | str: ...
    @property
    def host(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def severity(self) -> Severity: ...
    @property
    def rule_id(self) -> str | None: ...
    @property
    def policy_version(self) -> str | None: ...
    @property
    def summary(self) -> str: ...
    @property
    def evidence(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class AlertChangeRecord:
    """One entry of the alert change feed with the alert as it is when exported."""

    change_id: int
    change: str  # opened, count_raised, status_changed, assigned
    at: datetime
    alert_id: int
    kind: str
    severity: Severity
    rule_id: str | None
    host: str
    agent_id: str
    account: str | None
    title: str
    status: str
    assignee: str | None
    count: int
    first_seen: datetime
    last_seen: datetime


def _put(document: dict[str, Any], path: str, value: Any) -> None:
    """Set ``path`` (dotted) in ``document`` unless a value is there already."""
    *parents, leaf = path.split(".")
    node = document
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            return
        node = child
    if leaf == "hosts" and parents == ["related"]:  # related.hosts collects
        node.setdefault(leaf, [])
        node[leaf].extend(v for v in _listed(value) if v not in node[leaf])
        return
    node.setdefault(leaf, value)


def _get(evidence: Mapping[str, Any], path: str) -> Any:
    value: Any = evidence
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def evidence_fields(kind: str, evidence: Mapping[str, Any]) -> dict[str, Any]:
    """The ECS fields ``kind``'s evidence fills (flat, dotted names); {} for unknown kinds."""
    from agent.registry import EVIDENCE_MODELS

    model = EVIDENCE_MODELS.get(kind)
    fields = EVIDENCE_FIELDS.get(model) if model is not None else None
    out: dict[str, Any] = {}
    for source, target in (fields or {}).items():
        value = _get(evidence, source)
        if isinstance(target, To):
            value = target.convert(value) if target.convert and value is not None else value
            target_field = target.field
        else:
            target_field = target
        if value is None or value == "" or value == []:
            continue
        if target_field == "related.hosts":
            out.setdefault(target_field, [])
            out[target_field].extend(_listed(value))
        else:
            out.setdefault(target_field, value)
    return out


def _when(value: datetime) -> str:
    return value.isoformat()


def event_to_ecs(event: EventLike) -> dict[str, Any]:
    """One event as an ECS document (docs/ecs.md)."""
    family = event.kind.split(".", 1)[0]
    document: dict[str, Any] = {
        "@timestamp": _when(event.time),
        "message": event.summary,
        "event": {
            "id": str(event.id),
            "kind": "event" if event.severity is Severity.INFO else "alert",
            "category": [ECS_CATEGORY.get(family, "host")],
            "dataset": f"courtguard.{family}",
            "action": event.kind,
            "severity": ECS_SEVERITY[event.severity],
        },
        "log": {"level": event.severity.value},
        "host": {"name": event.host},
        "agent": {"id": str(event.agent_id), "type": "courtguard"},
        "courtguard": {"policy_version": event.policy_version,
                       "evidence": dict(event.evidence)},
    }
    if event.seq is not None:
        document["event"]["sequence"] = event.seq
    if event.rule_id is not None:
        document["rule"] = {"id": event.rule_id}
    for path, value in evidence_fields(event.kind, event.evidence).items():
        _put(document, path, value)
    return document


def alert_change_to_ecs(record: AlertChangeRecord) -> dict[str, Any]:
    """One alert change as an ECS document: ``event.action`` is ``alert.<change>``."""
    family = record.kind.split(".", 1)[0]
    document: dict[str, Any] = {
        "@timestamp": _when(record.at),
        "message": record.title,
        "event": {
            "id": f"alert-change-{record.change_id}",
            "kind": "alert",
            "type": ["change"],
            "category": [ECS_CATEGORY.get(family, "host")],
            "dataset": "courtguard.alert",
            "action": f"alert.{record.change}",
            "severity": ECS_SEVERITY[record.severity],
            "start": _when(record.first_seen),
            "end": _when(record.last_seen),
        },
        "log": {"level": record.severity.value},
        "host": {"name": record.host},
        "agent": {"id": record.agent_id, "type": "courtguard"},
        "courtguard": {"alert": {
            "id": record.alert_id, "kind": record.kind, "status": record.status,
            "assignee": record.assignee, "count": record.count, "change": record.change,
            "change_id": record.change_id,
        }},
    }
    if record.rule_id is not None:
        document["rule"] = {"id": record.rule_id}
    if record.account:
        document["user"] = {"name": record.account}
    return document
