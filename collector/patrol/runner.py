"""One patrol pass over every source, and the loop that runs it (see the package docstring).

For each document a source lists:

1. unchanged since the last pass (the source can tell without reading it, or
   its bytes hash the same): nothing more;
2. new or changed: checked with the documents policy in force; when it
   should be withdrawn (``do_not_publish``) or corrected (``needs_redaction``)
   a ``collector.document_published`` event is stored under the collector's
   own agent row, and it opens, or joins, the document's one alert. Its id is
   derived from the source, the document and the content's hash, so a
   restart, or a second pass over the same bytes, stores nothing new;
3. now clean, or gone from the source (not listed, or 404/410): the alert of
   its last event is closed by the system (``true_positive``, with a comment
   saying which), and a gone document is forgotten.

A source whose listing cannot be read is skipped for the pass and nothing of
it is taken for withdrawn. A document that cannot be read or checked keeps
what was known of it (an open alert stays open) and is tried again next pass.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final, Protocol

import structlog

from agent.events import PublishedDocumentEvidence, Severity, utcnow
from collector.alerts.service import alert_of_event, transition
from collector.errors import ApiError
from collector.own_events import store_collector_event
from collector.patrol import state
from collector.patrol.listing import (
    GONE,
    UNCHANGED,
    DocumentError,
    Entry,
    Fetched,
    ListingError,
    Seen,
    Source,
    make_source,
)
from collector.patrol.settings import PatrolSettings
from collector.store.audit import Actor
from collector.store.database import Database
from collector.store.leases import LeaseKeeper
from collector.worker_threads import finish_in_thread

log = structlog.get_logger("collector.patrol")

#: Namespace of the deterministic ids of collector.document_published events.
PATROL_NAMESPACE: Final = uuid.UUID("5d1c7a8e-2f4b-5c6d-9e0a-7b3c2d1e0f4a")
EVENT_KIND: Final = "collector.document_published"
PATROL_ACTOR: Final = Actor("system", via="patrol")
#: Verdicts that make a published document a problem, and what the alert recommends.
RECOMMENDATION: Final = {"do_not_publish": "withdraw", "needs_redaction": "correct"}
SEVERITY: Final = {"do_not_publish": Severity.HIGH, "needs_redaction": Severity.MEDIUM}
MAX_FINDINGS_IN_EVENT: Final = 50
FIRST_PASS_AFTER_S: Final = 60.0
#: The lease of the process that patrols when several serve one store.
PATROL_LEASE: Final = "patrol"


class Checker(Protocol):
    """``collector.api.documents.DocumentChecker``: bytes in, the scan report out."""

    async def check(self, data: bytes, name: str, profile: str | None) -> dict[str, Any]: ...


@dataclass
class PassSummary:
    """What one pass did, per count; ``errors`` are messages for the log and the CLI."""

    listed: int = 0
    unchanged: int = 0
    downloaded: int = 0
    checked: int = 0
    alerted: int = 0
    closed: int = 0
    gone: int = 0
    errors: list[str] = field(default_factory=list)


def masked_display(entry: Entry, findings: Sequence[dict[str, Any]]) -> str:
    """The document as people read it, with personal data in its file name masked."""
    name = entry.name
    for finding in sorted(
        (f for f in findings if f.get("part") == "filename"), key=lambda f: -int(f["start"])
    ):
        name = name[: finding["start"]] + finding["excerpt"] + name[finding["end"] :]
    if name == entry.name:
        return entry.display
    if entry.display.endswith(entry.name):
        return entry.display[: len(entry.display) - len(entry.name)] + name
    return name


def evidence_of(source: str, entry: Entry, report: dict[str, Any]) -> PublishedDocumentEvidence:
    findings = report["findings"]
    return PublishedDocumentEvidence.model_validate({
        "source": source,
        "document": masked_display(entry, findings)[:2048],
        "sha256": report["sha256"],
        "size": report["size"],
        "verdict": report["verdict"],
        "recommendation": RECOMMENDATION[report["verdict"]],
        "profile": report["profile"] or "",
        "rules": list(dict.fromkeys(f["rule_id"] for f in findings))[:100],
        "findings_total": max(1, len(findings)),
        "findings": [
            {
                "rule_id": f["rule_id"], "action": f["action"], "part": f["part"],
                "excerpt": f["excerpt"][:200], "detail": f["detail"][:500],
                "line": f.get("line"), "column": f.get("column"),
            }
            for f in findings[:MAX_FINDINGS_IN_EVENT]
        ],
    })


def summary_of(evidence: PublishedDocumentEvidence) -> str:
    what = "应撤回" if evidence.recommendation == "withdraw" else "应更正"
    rules = "、".join(evidence.rules[:3]) + ("等" if len(evidence.rules) > 3 else "")
    return (
        f"已公开文书{what}：{evidence.document}"
        f"（{evidence.findings_total} 处问题，规则 {rules}）"
    )[:500]


class DocumentPatrol:
    """The patrol over ``settings.sources``; ``run_pass`` is one pass, ``run`` the loop."""

    def __init__(
        self,
        db: Database,
        checker: Checker,
        settings: PatrolSettings,
        max_document_bytes: int,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.checker = checker
        self.settings = settings
        self.max_document_bytes = max_document_bytes
        self.clock = clock

    async def run_pass(self) -> PassSummary:
        summary = PassSummary()
        for config in self.settings.sources:
            try:
                source = make_source(config, self.settings, self.max_document_bytes)
            except ListingError as exc:
                summary.errors.append(f"{config.name}: {exc}")
                continue
            try:
                await self._patrol(source, summary)
            finally:
                await source.aclose()
        log.info("patrol pass", listed=summary.listed, downloaded=summary.downloaded,
                 unchanged=summary.unchanged, checked=summary.checked, alerted=summary.alerted,
                 closed=summary.closed, gone=summary.gone, errors=len(summary.errors))
        return summary

    async def _patrol(self, source: Source, summary: PassSummary) -> None:
        known = await finish_in_thread(state.load, self.db, source.name)
        try:
            entries = await source.entries()
        except ListingError as exc:
            summary.errors.append(f"{source.name}: {exc}")
            log.warning("patrol source not listed; nothing taken for withdrawn",
                        source=source.name, error=str(exc))
            return
        summary.listed += len(entries)
        downloaded_before = summary.downloaded
        for entry in entries:
            if summary.downloaded - downloaded_before >= self.settings.max_documents:
                log.warning("patrol downloaded max_documents from one source; the rest next pass",
                            source=source.name, listed=len(entries))
                break
            try:
                await self._document(source, entry, known.get(entry.key), summary)
            except DocumentError as exc:
                summary.errors.append(f"{source.name}: {entry.display}: {exc}")
            except Exception:  # one document must not stop the patrol of the others
                log.exception("patrol failed on one document; trying again next pass",
                              source=source.name)
                summary.errors.append(
                    f"{source.name}: {entry.display}: 巡查出错，已记入日志，下次重试"
                )
        listed = {entry.key for entry in entries}
        for key, seen in known.items():
            if key not in listed:
                await self._gone(source.name, seen, summary)

    async def _document(
        self, source: Source, entry: Entry, seen: Seen | None, summary: PassSummary
    ) -> None:
        outcome = await source.fetch(entry, seen)
        if outcome is UNCHANGED:
            summary.unchanged += 1
            return
        if outcome is GONE:
            if seen is not None:
                await self._gone(source.name, seen, summary)
            return
        assert isinstance(outcome, Fetched)  # noqa: S101 (the remaining case)
        summary.downloaded += 1
        digest = hashlib.sha256(outcome.data).hexdigest()
        now_seen = Seen(key=entry.key, etag=outcome.etag or entry.etag,
                        last_modified=outcome.last_modified or entry.last_modified,
                        size=len(outcome.data), mtime_ns=outcome.mtime_ns or entry.mtime_ns,
                        sha256=digest)
        if seen is not None and seen.sha256 == digest and seen.error is None:
            kept = replace(now_seen, verdict=seen.verdict, event_id=seen.event_id)
            await finish_in_thread(state.save, self.db, source.name, kept, self.clock())
            summary.unchanged += 1
            return
        try:
            report = await self.checker.check(outcome.data, entry.name, None)
        except ApiError as exc:  # no documents policy, or a broken one: try again next pass
            raise DocumentError(f"无法审查：{exc.detail}") from exc
        summary.checked += 1
        verdict, error = report["verdict"], report["error"]
        event_id = seen.event_id if seen is not None else None
        if error is not None:
            summary.errors.append(f"{source.name}: {entry.display}: {error}")
        elif verdict in RECOMMENDATION:
            made = await finish_in_thread(self._raise, source.name, entry, report)
            summary.alerted += made
            event_id = str(self._event_id(source.name, entry, report))
        elif event_id is not None:
            if await finish_in_thread(self._close, event_id, "已公开文书已更正，巡查复查可以公开"):
                summary.closed += 1
            event_id = None
        new = replace(now_seen, verdict=verdict, error=error, event_id=event_id)
        await finish_in_thread(state.save, self.db, source.name, new, self.clock())

    async def _gone(self, source: str, seen: Seen, summary: PassSummary) -> None:
        summary.gone += 1
        if seen.event_id is not None and await finish_in_thread(
            self._close, seen.event_id, "文书已从公开来源撤下（巡查未再发现）"
        ):
            summary.closed += 1
        await finish_in_thread(state.forget, self.db, source, seen.key)

    @staticmethod
    def _event_id(source: str, entry: Entry, report: dict[str, Any]) -> uuid.UUID:
        return uuid.uuid5(
            PATROL_NAMESPACE, f"{source}\n{entry.key}\n{report['sha256']}\n{report['verdict']}"
        )

    def _raise(self, source: str, entry: Entry, report: dict[str, Any]) -> int:
        """Store the document's event (its alert follows); 1 when new, 0 when already stored."""
        evidence = evidence_of(source, entry, report)
        event = store_collector_event(
            self.db, event_id=self._event_id(source, entry, report), kind=EVENT_KIND,
            severity=SEVERITY[report["verdict"]], summary=summary_of(evidence),
            evidence=evidence.model_dump(mode="json"), policy_version=None, now=self.clock(),
        )
        if event is not None:
            log.warning("published document should be withdrawn or corrected", source=source,
                        event_id=str(event.id), verdict=report["verdict"],
                        rules=evidence.rules[:10])
        return 1 if event is not None else 0

    def _close(self, event_id: str, comment: str) -> bool:
        """Close the alert ``event_id`` joined, if it is still open; whether it was closed."""
        alert_id = alert_of_event(self.db, event_id)
        if alert_id is None:
            return False
        (outcome,) = transition(self.db, [alert_id], "close", PATROL_ACTOR,
                                resolution="true_positive", comment=comment, now=self.clock())
        return outcome.ok

    async def run(self, leases: LeaseKeeper | None = None) -> None:
        """A pass every ``interval_s`` (the first a minute after start) until cancelled.

        With ``leases``, only the collector process holding the ``patrol`` lease patrols.
        """
        if leases is not None:
            leases.want(PATROL_LEASE)
        await asyncio.sleep(min(FIRST_PASS_AFTER_S, self.settings.interval_s))
        while True:
            try:
                if leases is None or leases.holds(PATROL_LEASE):
                    await self.run_pass()
            except Exception as exc:  # one bad pass must not end the patrol
                log.error("patrol pass failed; trying again next interval", error=str(exc))
            await asyncio.sleep(self.settings.interval_s)
