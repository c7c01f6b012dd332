"""Finding the newest stored bundle that verifies, and reporting every one that does not.

``CurrentPolicy`` (what the collector acts on) and ``PolicyCache`` (what it
serves agents) both read bundles through ``newest_verified``:

1. read the newest bundle for the group (``latest_for_group``);
2. stop at the version the caller already holds, verified when it was read:
   the collector never moves back to a lower version on its own (a new
   rollback is a new, higher version);
3. ``verify_stored`` it; a failure is reported (below) and the next older
   bundle is tried; the first that verifies is returned.

A failure is reported once per bad row content, not per call: the log gets an
error and the store a ``collector.policy_rejected`` event of high severity
(so the alert router pages the duty officer) whose id is derived from the
row's bytes, so several collector processes make one event between them.
The event belongs to the collector's own row (``COLLECTOR_SOURCE_ID``) and
says which version the collector keeps using instead.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from dataclasses import dataclass, field
from typing import Final

import structlog

from agent.events import PolicyRejectedEvidence, Severity, utcnow
from agent.policy.bundle import sha256_hex
from agent.policy.loader import PolicySet
from collector.errors import StoreError
from collector.own_events import store_collector_event
from collector.policy.verification import BundleUntrusted, verify_stored
from collector.store.database import Database
from collector.store.policies import StoredBundle, latest_for_group

log = structlog.get_logger("collector.policy")

KIND: Final = "collector.policy_rejected"
#: Namespace of the deterministic ids of collector.policy_rejected events.
REJECTED_NAMESPACE: Final = uuid.UUID("3c2f0d54-8b1e-5a7c-9d40-6e15b2a9f3c8")


def row_fingerprint(stored: StoredBundle) -> str:
    """Digest of everything a row's trust rests on: an edit to any of it is a new rejection."""
    digest = hashlib.sha256()
    for part in (stored.body, stored.signature.encode(), stored.sha256.encode(),
                 stored.agent_body or b"", (stored.agent_signature or "").encode(),
                 (stored.agent_sha256 or "").encode(), (stored.group or "").encode()):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return f"{stored.version}/{digest.hexdigest()}"


@dataclass
class RejectionReporter:
    """Reports each bad row once per process (and, by event id, once across processes)."""

    db: Database
    _reported: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def report(self, stored: StoredBundle, error: BundleUntrusted, kept: str | None,
               kept_text: str) -> None:
        fingerprint = row_fingerprint(stored)
        with self._lock:
            if fingerprint in self._reported:
                return
            self._reported.add(fingerprint)
        log.error("stored policy bundle failed verification; not acting on it or serving it",
                  version=stored.version, group=stored.group, reason_code=error.code,
                  reason=error.reason, kept_version=kept)
        now = utcnow()
        evidence = PolicyRejectedEvidence(
            reason_code=error.code,  # type: ignore[arg-type]  # codes come from BundleRejected
            reason=error.reason[:500], version=str(stored.version), group=stored.group,
            applied_version=kept, sha256=sha256_hex(stored.body),
        )
        try:
            store_collector_event(
                self.db, event_id=uuid.uuid5(REJECTED_NAMESPACE, fingerprint), kind=KIND,
                severity=Severity.HIGH, policy_version=kept,
                summary=f"收集端拒绝策略版本 {stored.version}（{error.code}）：{error.reason}；"
                        f"{kept_text}"[:500],
                evidence=evidence.model_dump(mode="json", exclude_none=True), now=now,
            )
        except StoreError as exc:
            log.error("collector.policy_rejected event not stored", version=stored.version,
                      error=str(exc))


def kept_text(version: int | None, files: bool) -> str:
    if version is not None:
        return f"继续使用已通过验证的版本 {version}"
    if files:
        return "没有通过验证的策略包，改用策略目录中的策略文件"
    return "没有通过验证的策略包"


def newest_verified(
    db: Database,
    group: str | None,
    public_key: str,
    reporter: RejectionReporter,
    *,
    held: int | None = None,
    files: bool = False,
) -> tuple[StoredBundle, PolicySet] | None:
    """The newest verified bundle for ``group`` above ``held``; None to keep what is held.

    ``files`` only words the report: whether the caller falls back to policy files.
    """
    rejected: list[tuple[StoredBundle, BundleUntrusted]] = []
    below: int | None = None
    found: tuple[StoredBundle, PolicySet] | None = None
    while True:
        stored = latest_for_group(db, group, below=below)
        if stored is None or (held is not None and stored.version <= held):
            break
        try:
            found = (stored, verify_stored(stored, public_key))
            break
        except BundleUntrusted as exc:
            rejected.append((stored, exc))
            below = stored.version
    kept = found[0].version if found is not None else held
    for stored, error in rejected:
        reporter.report(stored, error, None if kept is None else str(kept),
                        kept_text(kept, files))
    return found
