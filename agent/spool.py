"""The durable, bounded queue of events waiting for the collector: one SQLite file in WAL mode.

What survives a crash: an event counts as emitted once ``append`` returns,
because it is committed with ``synchronous=FULL`` by then; it leaves the
spool only when the collector acknowledged it (``ack``), the collector
refused it as invalid (``quarantine``) or the byte bound dropped it.

Bounds, and what happens at each:

* events: the sum of stored event bodies stays at or below ``max_bytes``
  (plus at most one pending ``agent.spool_dropped`` event, under 1 KiB).
  Over it, rows go least severe first, oldest first within a severity, so no
  high or critical event is dropped while a lower one remains. Drops are
  counted by severity (lifetime totals and counts not yet reported).
* the drop report: whenever unreported drops exist and no drop report is
  waiting in the spool, one ``agent.spool_dropped`` event with those counts
  is written in the same transaction. That event is never itself dropped,
  and it is written at most once per transaction, so the report cannot
  recurse; drops made while it waits are reported by the next one, written
  when it is acknowledged or on the next append.
* quarantine: at most a quarter of ``max_bytes`` and never more than
  ``QUARANTINE_MAX_BYTES``; the oldest rows go first, the lifetime count stays.
* the file: the database stays near its high-water mark, at most about twice
  ``max_bytes`` (half-full b-tree pages, the id index) plus the quarantine;
  ``auto_vacuum=INCREMENTAL`` hands free pages back once the spool empties.
  The WAL is checkpointed every ``max_bytes / 2`` (at most 4 MiB) and
  truncated to that size (``journal_size_limit``). So the files on disk stay
  below ``2.75 * max_bytes + 1 MiB`` and never above ``2 * max_bytes + 9 MiB``.

Several processes may write at once (the daemon, ``emit-test``): each write
takes ``BEGIN IMMEDIATE``, so sequence numbers come from one counter in the
database, strictly increasing in commit order and never reused.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import agent.registry  # noqa: F401 (adds the detectors' evidence models events are checked by)
from agent.errors import SpoolError
from agent.events import Event, Finding, Severity, uuid7
from agent.health import spool_dropped_finding

SCHEMA_VERSION: Final = 1
QUARANTINE_MAX_BYTES: Final = 4 * 1024 * 1024
WAL_MAX_BYTES: Final = 4 * 1024 * 1024
PAGE_BYTES: Final = 4096
#: Free pages worth returning to the file system once the spool has drained.
VACUUM_FREE_BYTES: Final = 1024 * 1024
BUSY_TIMEOUT_S: Final = 10.0
_CHUNK: Final = 500  # ids per statement, well under SQLite's parameter limit

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    severity INTEGER NOT NULL,
    size INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_severity ON events (severity, seq);
CREATE TABLE IF NOT EXISTS quarantine (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL,
    size INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value);
"""


@dataclass(frozen=True)
class SpoolStats:
    """Counters for ``status`` and the heartbeat."""

    depth: int = 0
    bytes: int = 0
    max_bytes: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    quarantined: int = 0
    next_seq: int = 1
    last_ship_at: str | None = None
    last_ship_result: str | None = None
    last_ship_error: str | None = None
    last_ship_ok_at: str | None = None

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())


class Spool:
    """One open spool database; thread-safe (one lock), so callers may use ``asyncio.to_thread``."""

    def __init__(
        self,
        path: Path,
        *,
        agent_id: uuid.UUID | None,
        host: str,
        max_bytes: int,
        busy_timeout_s: float = BUSY_TIMEOUT_S,
    ) -> None:
        self.path = path
        self.agent_id = agent_id
        self.host = host
        self.max_bytes = max_bytes
        self.quarantine_max_bytes = min(QUARANTINE_MAX_BYTES, max_bytes // 4)
        wal_bytes = max(64 * PAGE_BYTES, min(WAL_MAX_BYTES, max_bytes // 2))
        self._busy_timeout_s = busy_timeout_s
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_s
            )
        except (OSError, sqlite3.Error) as exc:
            raise SpoolError(f"spool {path} cannot be opened: {exc}; check data_dir") from exc
        with self._guard():
            # auto_vacuum only takes effect before the first table exists.
            self._db.execute("PRAGMA auto_vacuum = INCREMENTAL")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.execute(f"PRAGMA journal_size_limit = {wal_bytes}")
            self._db.execute(f"PRAGMA wal_autocheckpoint = {wal_bytes // PAGE_BYTES}")
            self._db.executescript(_SCHEMA)
        with self._tx() as db:
            self._set(db, "schema_version", SCHEMA_VERSION)
            if agent_id is not None:
                self._adopt_agent_id(db, str(agent_id))
            self._emit_drop_report_if_due(db)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------

    def append(self, findings: Iterable[Finding], policy_version: str | None = None) -> list[Event]:
        """Store findings as events: ids, sequence numbers and the commit in one transaction."""
        findings = list(findings)
        if not findings:
            return []
        with self._tx() as db:
            events = self._insert(db, findings, policy_version)
            self._drop_over_limit(db)
            if self._emit_drop_report_if_due(db):
                self._drop_over_limit(db)
        return events

    def configure_drop_report(
        self, severity: Severity, rule_id: str | None, policy_version: str | None
    ) -> None:
        """Record how ``agent.spool_dropped`` is stamped, for every process that writes here."""
        with self._tx() as db:
            self._set(db, "drop_severity", severity.value)
            self._set(db, "drop_rule_id", rule_id)
            self._set(db, "policy_version", policy_version)

    def ack(self, ids: Iterable[uuid.UUID | str], shipped: str | None = None) -> int:
        """Delete acknowledged events; returns how many were still here.

        ``shipped`` is the shipper's summary of the successful send, recorded as
        ``record_ship`` would, in the same transaction: one commit per batch, not two.
        """
        keys = [str(i) for i in ids]
        with self._tx() as db:
            count, _ = self._remove(db, keys)
            if count:
                self._emit_drop_report_if_due(db)
            if shipped is not None:
                self._record_ship(db, shipped, None, ok=True)
            empty = self._get(db, "depth", 0) == 0
        if empty and count:
            with self._guard():
                free_pages = self._db.execute("PRAGMA freelist_count").fetchone()[0]
                # Give disk back after a backlog, not after every small batch (a write each).
                if free_pages * PAGE_BYTES >= VACUUM_FREE_BYTES:
                    # Through execute() this pragma frees a single page (one VM step);
                    # executescript runs it to completion.
                    self._db.executescript("PRAGMA incremental_vacuum;")
        return count

    def quarantine(self, ids: Iterable[uuid.UUID | str], reason: str) -> int:
        """Move events the collector will never accept aside; returns how many moved."""
        keys = [str(i) for i in ids]
        now = datetime.now(UTC).isoformat()
        with self._tx() as db:
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                sql = (
                    "INSERT OR REPLACE INTO quarantine (seq, id, reason, at, size, body) "  # noqa: S608 (only ? placeholders are formatted in)
                    f"SELECT seq, id, ?, ?, size, body FROM events WHERE id IN ({marks})"
                )
                db.execute(sql, [reason[:500], now, *chunk])
            count, _ = self._remove(db, keys)
            self._add(db, "quarantined", count)
            self._trim_quarantine(db)
        return count

    def renumber_above(self, stored_max_seq: int) -> int:
        """Give the waiting events seqs above ``stored_max_seq``, in the same order.

        For a spool that started numbering again at 1 (moved aside after corruption)
        while the collector holds this agent's events up to ``stored_max_seq``: the
        collector keeps one event per agent and seq. Returns the offset added, 0 when
        every waiting seq is already above it.
        """
        with self._tx() as db:
            (lowest,) = db.execute("SELECT min(seq) FROM events").fetchone()
            if lowest is None or lowest > stored_max_seq:
                return 0
            offset = stored_max_seq + 1 - int(lowest)
            rows = db.execute("SELECT seq, body FROM events").fetchall()
            db.execute("UPDATE events SET seq = -seq")  # negative seqs never collide
            grown = 0
            for seq, body in rows:
                data = json.loads(body)
                data["seq"] = seq + offset
                new = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
                grown += len(new) - len(body)
                db.execute(
                    "UPDATE events SET seq = ?, body = ?, size = ? WHERE seq = ?",
                    (seq + offset, new, len(new), -seq),
                )
            self._set(db, "next_seq", int(self._get(db, "next_seq", 1)) + offset)
            self._add(db, "bytes", grown)
        return offset

    def record_ship(self, result: str, error: str | None = None, ok: bool = False) -> None:
        """Remember the shipper's last outcome so ``status`` can show it."""
        with self._tx() as db:
            self._record_ship(db, result, error, ok)

    def _record_ship(
        self, db: sqlite3.Connection, result: str, error: str | None, ok: bool
    ) -> None:
        now = datetime.now(UTC).isoformat()
        self._set(db, "last_ship_at", now)
        self._set(db, "last_ship_result", result)
        self._set(db, "last_ship_error", error)
        if ok:
            self._set(db, "last_ship_ok_at", now)

    # -- reading ---------------------------------------------------------------

    def batch(self, max_events: int, max_bytes: int) -> list[tuple[str, int, bytes]]:
        """The oldest events as (id, seq, body), in seq order; at least one if any is waiting."""
        out: list[tuple[str, int, bytes]] = []
        total = 0
        with self._guard():
            rows = self._db.execute(
                "SELECT id, seq, body FROM events ORDER BY seq LIMIT ?", (max_events,)
            )
            for event_id, seq, body in rows:
                if out and total + len(body) + 1 > max_bytes:
                    break
                out.append((event_id, seq, bytes(body)))
                total += len(body) + 1
        return out

    def depth(self) -> int:
        with self._guard():
            return int(self._get(self._db, "depth", 0))

    def stats(self) -> SpoolStats:
        with self._guard():
            meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        return SpoolStats(
            depth=int(meta.get("depth", 0)),
            bytes=int(meta.get("bytes", 0)),
            max_bytes=self.max_bytes,
            dropped={s.value: int(meta.get(f"dropped.{s.value}", 0)) for s in Severity},
            quarantined=int(meta.get("quarantined", 0)),
            next_seq=int(meta.get("next_seq", 1)),
            last_ship_at=meta.get("last_ship_at"),
            last_ship_result=meta.get("last_ship_result"),
            last_ship_error=meta.get("last_ship_error"),
            last_ship_ok_at=meta.get("last_ship_ok_at"),
        )

    def policy_version(self) -> str | None:
        """The policy version the daemon last stamped events with, for other writers."""
        with self._guard():
            value = self._get(self._db, "policy_version", None)
        return None if value is None else str(value)

    def quarantined_rows(self) -> list[tuple[str, str]]:
        """(id, reason) of every quarantined event still kept, oldest first."""
        with self._guard():
            return list(self._db.execute("SELECT id, reason FROM quarantine ORDER BY seq"))

    # -- internals -------------------------------------------------------------

    def _insert(
        self, db: sqlite3.Connection, findings: list[Finding], policy_version: str | None
    ) -> list[Event]:
        if self.agent_id is None:
            raise SpoolError("the spool cannot take events before the agent is enrolled")
        seq = int(self._get(db, "next_seq", 1))
        now = datetime.now(UTC)
        events: list[Event] = []
        rows: list[tuple[int, str, int, int, bytes]] = []
        for finding in findings:
            event = Event(
                id=uuid7(),
                seq=seq,
                time=finding.time or now,
                agent_id=self.agent_id,
                host=self.host,
                kind=finding.kind,
                severity=finding.severity,
                rule_id=finding.rule_id,
                policy_version=policy_version,
                summary=finding.summary,
                evidence=finding.evidence,
            )
            body = event.model_dump_json(exclude_none=True).encode()
            rows.append((seq, str(event.id), event.severity.rank, len(body), body))
            events.append(event)
            seq += 1
        db.executemany(
            "INSERT INTO events (seq, id, severity, size, body) VALUES (?, ?, ?, ?, ?)", rows
        )
        self._set(db, "next_seq", seq)
        self._add(db, "depth", len(rows))
        self._add(db, "bytes", sum(row[3] for row in rows))
        return events

    def _drop_over_limit(self, db: sqlite3.Connection) -> None:
        excess = int(self._get(db, "bytes", 0)) - self.max_bytes
        if excess <= 0:
            return
        protected = self._get(db, "drop_event_id", "") or ""
        victims: list[tuple[int, int, int]] = []
        freed = 0
        rows = db.execute(
            "SELECT seq, severity, size FROM events WHERE id != ? ORDER BY severity, seq",
            (protected,),
        )
        for seq, severity, size in rows:
            victims.append((seq, severity, size))
            freed += size
            if freed >= excess:
                break
        db.executemany("DELETE FROM events WHERE seq = ?", [(v[0],) for v in victims])
        self._add(db, "depth", -len(victims))
        self._add(db, "bytes", -freed)
        for rank in {v[1] for v in victims}:
            name = Severity.from_rank(rank).value
            count = sum(1 for v in victims if v[1] == rank)
            self._add(db, f"dropped.{name}", count)
            self._add(db, f"pending_drop.{name}", count)

    def _emit_drop_report_if_due(self, db: sqlite3.Connection) -> bool:
        pending = {s: int(self._get(db, f"pending_drop.{s.value}", 0)) for s in Severity}
        pending = {s: n for s, n in pending.items() if n > 0}
        if not pending or self.agent_id is None:
            return False
        waiting = self._get(db, "drop_event_id", None)
        if waiting and db.execute("SELECT 1 FROM events WHERE id = ?", (waiting,)).fetchone():
            return False  # the previous report has not left yet; these counts go in the next one
        finding = spool_dropped_finding(
            pending,
            self.max_bytes,
            Severity(self._get(db, "drop_severity", None) or Severity.MEDIUM.value),
            self._get(db, "drop_rule_id", None),
        )
        assert finding is not None  # noqa: S101 (pending holds only positive counts)
        (event,) = self._insert(db, [finding], self._get(db, "policy_version", None))
        for severity in pending:
            self._set(db, f"pending_drop.{severity.value}", 0)
        self._set(db, "drop_event_id", str(event.id))
        return True

    def _remove(self, db: sqlite3.Connection, keys: list[str]) -> tuple[int, int]:
        count = size = 0
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            n, s = db.execute(
                f"SELECT count(*), coalesce(sum(size), 0) FROM events WHERE id IN ({marks})",  # noqa: S608 (placeholders only)
                chunk,
            ).fetchone()
            db.execute(f"DELETE FROM events WHERE id IN ({marks})", chunk)  # noqa: S608 (placeholders only)
            count += n
            size += s
        self._add(db, "depth", -count)
        self._add(db, "bytes", -size)
        return count, size

    def _trim_quarantine(self, db: sqlite3.Connection) -> None:
        (total,) = db.execute("SELECT coalesce(sum(size), 0) FROM quarantine").fetchone()
        if total <= self.quarantine_max_bytes:
            return
        excess = total - self.quarantine_max_bytes
        freed = 0
        doomed = []
        for seq, size in db.execute("SELECT seq, size FROM quarantine ORDER BY seq"):
            doomed.append((seq,))
            freed += size
            if freed >= excess:
                break
        db.executemany("DELETE FROM quarantine WHERE seq = ?", doomed)

    def _adopt_agent_id(self, db: sqlite3.Connection, agent_id: str) -> None:
        """After a re-enrollment, restamp waiting events so the collector takes them as ours."""
        previous = self._get(db, "agent_id", None)
        if previous is not None and previous != agent_id:
            rows = db.execute("SELECT seq, body FROM events").fetchall()
            for seq, body in rows:
                data = json.loads(body)
                data["agent_id"] = agent_id
                new = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
                db.execute(
                    "UPDATE events SET body = ?, size = ? WHERE seq = ?", (new, len(new), seq)
                )
        self._set(db, "agent_id", agent_id)

    @staticmethod
    def _get(db: sqlite3.Connection, key: str, default: Any) -> Any:
        row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None or row[0] is None else row[0]

    @staticmethod
    def _set(db: sqlite3.Connection, key: str, value: Any) -> None:
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    @staticmethod
    def _add(db: sqlite3.Connection, key: str, delta: int) -> None:
        db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = value + excluded.value",
            (key, delta),
        )

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Hold the lock and turn SQLite failures into SpoolError with advice."""
        with self._lock:
            try:
                yield
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    raise SpoolError(
                        f"spool {self.path} stayed locked by another process for more than "
                        f"{self._busy_timeout_s:g} s; check for a stuck courtguard-agent process"
                    ) from exc
                raise SpoolError(f"spool {self.path} cannot be used: {exc}") from exc
            except sqlite3.DatabaseError as exc:
                raise SpoolError(
                    f"spool {self.path} is unreadable or corrupt ({exc}); stop the agent, move the "
                    "file aside and start again (events still in it are lost)"
                ) from exc

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken with BEGIN IMMEDIATE so concurrent writers queue."""
        with self._guard():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
