"""Entity pages as plain data: one host, one account, one document hash, across the store.

Each reads through indexed columns: a host's events by ``(agent_id, time, id)``,
an account's by ``(account, time, id)``, a document's through the document
kinds' ``(kind, time, id)`` and then the evidence's ``sha256``. Lists are
bounded (``TIMELINE``, ``SECTION``), newest first.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any, Final

from sqlalchemy import select

from agent.events import Severity
from agent.registry import EVIDENCE_MODELS
from collector.alerts import service
from collector.api import bounds
from collector.api.views import agent_view
from collector.console import params as p
from collector.correlation.silent_pass import SilentAgentPass
from collector.store.agents import list_agents
from collector.store.database import Database
from collector.store.host_identity import identity_chain
from collector.store.tables import (
    alert_events,
    alerts,
    doc_check_decisions,
    doc_check_history,
    events,
)

TIMELINE: Final = 200
SECTION: Final = 50
#: What a timeline may be narrowed to: the three pillars and the agent's own events.
PILLAR_CHOICES: Final = ("outreach", "account", "document", "agent")
SHA256: Final = re.compile(r"^[0-9a-f]{64}$")
#: The table the clerk role (书记员) records its publish / do-not-publish decisions in.
DOCUMENT_KINDS: Final = tuple(sorted(k for k in EVIDENCE_MODELS if k.startswith("document.")))
#: What agents report of the isolation orders they carried out or refused.
ISOLATION_KINDS: Final = ("outreach.isolation_applied", "outreach.isolation_lifted",
                          "outreach.isolation_refused")
#: Heartbeats are the agents page's business; a timeline without them reads as a story.
_NOT_ON_TIMELINE: Final = ("agent.heartbeat",)


class EntityFilter:
    """A timeline's narrowing: one pillar and a time range (Beijing time when zone-less)."""

    def __init__(self, params: p.Params, zone: tzinfo) -> None:
        pillar = (params.get("pillar") or "").strip()
        if pillar and pillar not in PILLAR_CHOICES:
            raise p.FilterError("pillar", f"must be one of {', '.join(PILLAR_CHOICES)}")
        self.pillar = pillar or None
        self.since = p.when(params, "since", zone)
        self.until = p.when(params, "until", zone)

    def conditions(self) -> list[Any]:
        e = events.c
        found: list[Any] = [e.kind.not_in(_NOT_ON_TIMELINE)]
        if self.pillar:
            # A prefix range, not LIKE: it walks the kind index on both stores.
            found += [e.kind >= f"{self.pillar}.", e.kind < f"{self.pillar}/"]
        if self.since is not None:
            found.append(e.time >= self.since)
        if self.until is not None:
            found.append(e.time <= self.until)
        return found


def _brief(row: Any) -> dict[str, Any]:
    return {"id": row.id, "time": row.time.isoformat(), "host": row.host,
            "agent_id": row.agent_id, "kind": row.kind,
            "severity": Severity.from_rank(row.severity).value, "rule_id": row.rule_id,
            "summary": row.summary, "account": row.account}


_BRIEF_COLUMNS: Final = (events.c.id, events.c.time, events.c.host, events.c.agent_id,
                         events.c.kind, events.c.severity, events.c.rule_id, events.c.summary,
                         events.c.account)


def _events(db: Database, where: Sequence[Any], limit: int,
            evidence: bool = False) -> list[dict[str, Any]]:
    columns = (*_BRIEF_COLUMNS, events.c.evidence) if evidence else _BRIEF_COLUMNS
    with db.read() as conn:
        rows = conn.execute(select(*columns).where(*where)
                            .order_by(events.c.time.desc(), events.c.id.desc())
                            .limit(limit)).all()
    found = []
    for row in rows:
        item = _brief(row)
        if evidence:
            item["evidence"] = row.evidence if isinstance(row.evidence, dict) else {}
        found.append(item)
    return found


def _alerts(db: Database, where: Sequence[Any]) -> list[dict[str, Any]]:
    with db.read() as conn:
        rows = conn.execute(select(alerts).where(*where)
                            .order_by(alerts.c.last_seen.desc(), alerts.c.id.desc())
                            .limit(SECTION)).mappings().all()
    return [service.public(row) for row in rows]


def _evidence_text(evidence: Mapping[str, Any], name: str) -> str:
    value = evidence.get(name)
    return "" if value is None else str(value)


# -- host --------------------------------------------------------------------------------


def host_detail(db: Database, agent_id: str, monitor: SilentAgentPass, where: EntityFilter,
                now: datetime) -> dict[str, Any] | None:
    """``{agent, identities, timeline, alerts, policies, sessions, interfaces, addresses, ...}``.

    ``identities`` are the host's other agents (re-enrollments), each with its own page.
    """
    try:
        agent_id = str(uuid.UUID(agent_id))
    except ValueError:
        return None
    row = next((r for r in list_agents(db) if r["id"] == agent_id), None)
    if row is None:
        return None
    agent = agent_view(row, monitor.status_of(row, now))
    agent["degraded"] = sorted(
        name for name, health in (agent["detectors"] or {}).items()
        if isinstance(health, dict) and health.get("state") not in (None, "ok"))
    e = events.c
    mine = e.agent_id == agent_id
    timeline = _events(db, [mine, *where.conditions()], TIMELINE)
    policies = _events(db, [mine, e.kind == "agent.policy_applied"], SECTION, evidence=True)
    sessions = _events(db, [mine, e.kind == "account.session"], SECTION, evidence=True)
    actions = _events(db, [mine, e.kind == "outreach.action"], SECTION, evidence=True)
    isolation_reports = _events(db, [mine, e.kind.in_(ISOLATION_KINDS)], SECTION, evidence=True)
    seen = _events(db, [mine, e.kind.in_(("outreach.interface", "outreach.wifi",
                                          "outreach.address"))], TIMELINE, evidence=True)
    interfaces: dict[str, dict[str, Any]] = {}
    addresses: dict[tuple[str, str], dict[str, Any]] = {}
    for item in reversed(seen):  # oldest first, so each keeps its first and last sighting
        evidence = item["evidence"]
        name = _evidence_text(evidence, "interface") or "-"
        if item["kind"] == "outreach.address":
            key = (name, f"{_evidence_text(evidence, 'address')}/"
                         f"{_evidence_text(evidence, 'prefixlen')}")
            entry = addresses.setdefault(key, {"interface": key[0], "address": key[1],
                                               "first": item["time"], "count": 0})
        else:
            entry = interfaces.setdefault(name, {
                "interface": name, "class": _evidence_text(evidence, "interface_class"),
                "mac": _evidence_text(evidence, "interface_mac"),
                "usb_id": _evidence_text(evidence, "interface_usb_id"),
                "first": item["time"], "count": 0})
        entry["last"] = item["time"]
        entry["count"] += 1
    with db.read() as conn:
        chain = identity_chain(conn, agent_id)
    identities = [{**i, "relation": "Later identity"} for i in chain["successors"]] + [
        {**i, "relation": "Earlier identity"} for i in chain["predecessors"]]
    return {
        "agent": agent,
        "identities": identities,
        "timeline": timeline,
        "alerts": _alerts(db, [alerts.c.host == agent["hostname"], alerts.c.agent_id == agent_id]),
        "policies": [{"time": i["time"], "version": _evidence_text(i["evidence"], "version"),
                      "previous": _evidence_text(i["evidence"], "previous_version"),
                      "source": _evidence_text(i["evidence"], "source")} for i in policies],
        "sessions": [{"time": i["time"], "account": i["account"] or "",
                      "action": _evidence_text(i["evidence"], "action"),
                      "service": _evidence_text(i["evidence"], "service"),
                      "remote_host": _evidence_text(i["evidence"], "remote_host")}
                     for i in sessions],
        "interfaces": sorted(interfaces.values(), key=lambda i: i["last"], reverse=True),
        "addresses": sorted(addresses.values(), key=lambda i: i["last"], reverse=True),
        "actions": [{"time": i["time"], "id": i["id"],
                     "action": _evidence_text(i["evidence"], "action"),
                     "target": _evidence_text(i["evidence"], "target"),
                     "dry_run": bool(i["evidence"].get("dry_run")),
                     "ok": bool(i["evidence"].get("ok"))} for i in actions],
        "isolation_reports": [{"time": i["time"], "id": i["id"], "kind": i["kind"],
                               "summary": i["summary"],
                               "isolation_id": _evidence_text(i["evidence"], "isolation_id"),
                               "order_id": _evidence_text(i["evidence"], "order_id"),
                               "ok": i["evidence"].get("ok", True) is not False}
                              for i in isolation_reports],
    }


# -- account -----------------------------------------------------------------------------


def check_account(name: str) -> str | None:
    """An account name as the store holds it (1–256 characters, no NUL), or None."""
    if not name or len(name) > 256:
        return None
    try:
        bounds.check_text(name)
    except ValueError:
        return None
    return name


def roster_entry(accounts_policy: Any, account: str) -> dict[str, Any] | None:
    """The accounts policy's entry for ``account``: role, sponsor (谁负责), hours, hosts."""
    if accounts_policy is None:
        return None
    resolved = accounts_policy.resolve(account)
    if resolved is None:
        return None
    role = resolved.role
    return {
        "role": resolved.role_name, "description": role.description,
        "sponsor": resolved.sponsor, "disabled": resolved.disabled,
        "hosts": accounts_policy.expand(role.hosts),
        "hours": f"{role.hours.start:%H:%M}–{role.hours.end:%H:%M}",
        "workdays_only": role.workdays_only,
        "contract_start": role.contract.start.isoformat() if role.contract.start else None,
        "contract_end": role.contract.end.isoformat() if role.contract.end else None,
    }


def account_detail(db: Database, account: str, accounts_policy: Any,
                   where: EntityFilter) -> dict[str, Any]:
    """``{account, roster, hosts, sessions, privileges, correlations, alerts, timeline}``."""
    e = events.c
    mine = e.account == account
    sessions = _events(db, [mine, e.kind == "account.session"], TIMELINE, evidence=True)
    privileges = _events(db, [mine, e.kind == "account.privilege"], SECTION, evidence=True)
    correlations = _events(db, [mine, e.kind.in_(("account.shared", "account.first_seen",
                                                  "account.daily_score"))],
                           SECTION, evidence=True)
    hosts: dict[str, dict[str, Any]] = {}
    for item in reversed(sessions):
        entry = hosts.setdefault(item["agent_id"], {
            "agent_id": item["agent_id"], "host": item["host"], "first": item["time"],
            "opened": 0})
        entry["last"] = item["time"]
        entry["opened"] += _evidence_text(item["evidence"], "action") in ("open", "present")
    return {
        "account": account,
        "roster": roster_entry(accounts_policy, account),
        "hosts": sorted(hosts.values(), key=lambda h: h["last"], reverse=True),
        "sessions": [{"time": i["time"], "host": i["host"], "agent_id": i["agent_id"],
                      "action": _evidence_text(i["evidence"], "action"),
                      "session_id": _evidence_text(i["evidence"], "session_id"),
                      "service": _evidence_text(i["evidence"], "service"),
                      "remote_host": _evidence_text(i["evidence"], "remote_host")}
                     for i in sessions[:SECTION]],
        "privileges": [{"time": i["time"], "host": i["host"], "agent_id": i["agent_id"],
                        "id": i["id"], "tool": _evidence_text(i["evidence"], "tool"),
                        "outcome": _evidence_text(i["evidence"], "outcome"),
                        "target": _evidence_text(i["evidence"], "target"),
                        "command": _evidence_text(i["evidence"], "command")}
                       for i in privileges],
        "correlations": [{"time": i["time"], "id": i["id"], "kind": i["kind"],
                          "severity": i["severity"], "summary": i["summary"],
                          "hosts": [str(h) for h in i["evidence"].get("hosts") or []
                                    if isinstance(h, str)]
                          or ([i["evidence"]["host"]] if isinstance(
                              i["evidence"].get("host"), str) else [])}
                         for i in correlations],
        "alerts": _alerts(db, [alerts.c.account == account]),
        "timeline": _events(db, [mine, *where.conditions()], TIMELINE),
    }


# -- document ----------------------------------------------------------------------------


def clerk_decisions(db: Database, sha256: str) -> list[dict[str, Any]]:
    """Every decision clerks made on this document's findings, newest first (masked excerpts)."""
    c = doc_check_decisions.c
    query = (select(c.decided_at, c.decided_by, c.rule_id, c.excerpt, c.decision, c.reason)
             .where(c.sha256 == sha256).order_by(c.id.desc()).limit(SECTION))
    with db.read() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def clerk_checks(db: Database, sha256: str) -> list[dict[str, Any]]:
    """The clerks who checked this document on the 文书检查 page, newest first."""
    c = doc_check_history.c
    query = (select(c.checked_at, c.username, c.file_name, c.verdict, c.findings, c.error)
             .where(c.sha256 == sha256).order_by(c.id.desc()).limit(SECTION))
    with db.read() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def document_detail(db: Database, sha256: str) -> dict[str, Any] | None:
    """``{sha256, names, hosts, events, alerts, decisions, checks}``; None for a malformed hash."""
    if not SHA256.match(sha256):
        return None
    e = events.c
    found = _events(db, [e.kind.in_(DOCUMENT_KINDS),
                         e.evidence["sha256"].as_string() == sha256], TIMELINE, evidence=True)
    hosts: dict[str, dict[str, Any]] = {}
    for item in reversed(found):
        entry = hosts.setdefault(item["agent_id"], {
            "agent_id": item["agent_id"], "host": item["host"], "first": item["time"],
            "events": 0})
        entry["last"] = item["time"]
        entry["events"] += 1
    names = sorted({_evidence_text(i["evidence"], "file_name") for i in found} - {""})
    return {
        "sha256": sha256,
        "names": names,
        "hosts": sorted(hosts.values(), key=lambda h: h["last"], reverse=True),
        "events": [{**{k: v for k, v in i.items() if k != "evidence"},
                    "verdict": _evidence_text(i["evidence"], "verdict"),
                    "action": _evidence_text(i["evidence"], "action"),
                    "basis": _evidence_text(i["evidence"], "basis"),
                    "folder": _evidence_text(i["evidence"], "folder"),
                    "file_name": _evidence_text(i["evidence"], "file_name"),
                    "occurrences_total": i["evidence"].get("occurrences_total")}
                   for i in found],
        "alerts": _alerts(db, [alerts.c.id.in_(
            select(alert_events.c.alert_id)
            .where(alert_events.c.event_id.in_([i["id"] for i in found])))]) if found else [],
        "decisions": clerk_decisions(db, sha256),
        "checks": clerk_checks(db, sha256),
    }
