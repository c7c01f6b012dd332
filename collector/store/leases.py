"""Leases: which collector process runs each singleton, so several share one store.

Several ``courtguard-collector serve`` processes on one PostgreSQL database
all take agents' batches, serve the console and the API; the work that must
happen once (the alert router, each SIEM output, the silent-agent check,
account correlation, the holiday calendar check, retention, the planner
statistics check, the document patrol) runs in the one process holding that
work's lease, a row of ``leases``:

- ``take`` takes or renews a lease in one statement (an upsert whose update
  applies only when the row is free, ours, or run out), atomic on SQLite and
  PostgreSQL alike; ``release`` hands it back at shutdown, so another process
  need not wait;
- a process killed (SIGKILL, power loss) renews nothing: its leases run out
  ``duration`` after its last renewal and the next ``take`` by another process
  gets them. With ``LEASE`` (30 s) and the keeper renewing every ``RENEW_EVERY``
  (10 s), a singleton moves at most ``LEASE + RENEW_EVERY`` (40 s) after its
  holder died;
- a lease only decides who works. Every write that must not happen twice
  (the router's and each output's cursor moves) is also a compare-and-set on
  the cursor it moves, so a holder whose lease ran out while it was stalled
  (a long GC pause, a suspended VM) cannot make a move the new holder also made.

A process's owner name is stable across restarts (``claim_owner``): it names
the host, the data directory and a slot the process holds an exclusive
``flock`` on for its whole life. The kernel drops that lock when the process
dies, however it dies, so a restarted collector on the same data directory
takes the same slot and name and renews its predecessor's leases at once
instead of waiting them out; while a process is alive (even stopped or
stalled) no other can take its name, so two live processes never share one.

``LeaseKeeper`` is a process's set of leases on the periodic singletons:
``want`` names them, ``run`` takes and renews them together every
``RENEW_EVERY``, and each pass asks ``holds(name)`` before it starts. A lease
counts as held only until ``duration`` after the renewal that took it began,
by this process's monotonic clock, so a keeper that cannot reach the store
stops working well before another process can take over. The router and the
exporters, which loop every second or so anyway, ``take`` their lease on each
pass instead. The processes' wall clocks are compared through ``lease_until``:
keep the hosts on NTP (a skew eats into ``LEASE``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import socket
import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

import structlog
from sqlalchemy import ColumnElement, case, exists, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from agent.events import utcnow
from collector.store.database import Database
from collector.store.tables import leases
from collector.worker_threads import finish_in_thread

log = structlog.get_logger("collector.leases")

#: How long a lease lasts after its last renewal: how long a killed holder's work waits.
LEASE: Final = timedelta(seconds=30)
#: How often the keeper renews: a third of ``LEASE``, so two renewals may fail in a row.
RENEW_EVERY: Final = LEASE / 3


#: Slots per data directory: how many live processes may share one (``reuse_port``).
OWNER_SLOTS: Final = 64


def new_owner() -> str:
    """A name in ``leases.owner`` for one process's life: the host and a random tag."""
    return f"{socket.gethostname()}/{uuid.uuid4().hex[:8]}"


class OwnerClaim:
    """A stable owner name, held by an open, locked file until ``close``, until the claim is
    garbage-collected (an app built and never served), or until the process ends."""

    def __init__(self, owner: str, lock_fd: int | None = None) -> None:
        self.owner = owner
        self._release = None if lock_fd is None else weakref.finalize(self, os.close, lock_fd)

    @property
    def held(self) -> bool:
        return self._release is not None and self._release.alive

    def close(self) -> None:
        if self._release is not None:
            self._release()


def _machine_id() -> str:
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        with contextlib.suppress(OSError):
            return Path(path).read_text().strip()
    return ""


def claim_owner(data_dir: Path) -> OwnerClaim:
    """The first free slot of ``data_dir`` and the stable owner name it stands for.

    The name is the host name and a digest of the machine id, the data directory's real
    path and the slot: a copy of the directory elsewhere, or a second directory on the
    same host, gets other names. Without a usable directory (read-only, missing) the
    process gets a random name, as before: correct, only slower to take over.
    """
    directory = data_dir / "leases"
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        place = f"{_machine_id()}\0{directory.resolve()}"
        for slot in range(OWNER_SLOTS):
            # Not inherited by children: a child outliving this process would keep its name.
            fd = os.open(directory / f"owner-{slot}.lock",
                         os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)  # a live process is this slot
                continue
            except BaseException:
                os.close(fd)
                raise
            tag = hashlib.sha256(f"{place}\0{slot}".encode()).hexdigest()[:8]
            return OwnerClaim(f"{socket.gethostname()}/{tag}-{slot}", fd)
        log.warning("every lease owner slot is taken; this process takes a random name",
                    data_dir=str(data_dir), slots=OWNER_SLOTS)
    except OSError as exc:
        log.warning("no stable lease owner name; a restart waits out this process's leases",
                    data_dir=str(data_dir), error=str(exc))
    return OwnerClaim(new_owner())


def take(db: Database, name: str, owner: str, now: datetime,
         duration: timedelta = LEASE) -> bool:
    """Take or renew the lease ``name`` until ``now + duration``; False while another holds it."""
    c = leases.c
    module: Any = postgresql if db.dialect == "postgresql" else sqlite
    stmt = module.insert(leases).values(name=name, owner=owner, lease_until=now + duration,
                                        taken_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=[c.name],
        set_={
            "owner": owner,
            "lease_until": now + duration,
            # When the holder changes; a renewal keeps the time it was taken.
            "taken_at": _taken_at(owner, now),
        },
        where=or_(c.owner == owner, c.owner.is_(None), c.lease_until < now),
    ).returning(c.name)
    with db.write() as conn:
        return conn.execute(stmt).first() is not None


def _taken_at(owner: str, now: datetime) -> Any:
    return case((leases.c.owner == owner, leases.c.taken_at), else_=now)


def release(db: Database, name: str, owner: str) -> None:
    """Hand the lease back at once, if ``owner`` holds it."""
    c = leases.c
    with db.write() as conn:
        conn.execute(update(leases).where(c.name == name, c.owner == owner)
                     .values(owner=None, lease_until=None))


def release_all(db: Database, owner: str) -> None:
    """Hand back every lease ``owner`` holds (a process shutting down)."""
    c = leases.c
    with db.write() as conn:
        conn.execute(update(leases).where(c.owner == owner)
                     .values(owner=None, lease_until=None))


def held_by(name: str, owner: str) -> ColumnElement[bool]:
    """A condition for a guarded write: ``owner`` holds ``name`` (as of its last renewal)."""
    c = leases.c
    return exists(select(c.name).where(c.name == name, c.owner == owner))


@dataclass(frozen=True)
class Holder:
    name: str
    owner: str | None
    lease_until: datetime | None
    taken_at: datetime | None


def holders(db: Database) -> dict[str, Holder]:
    """Every lease row by name (a free one has no owner)."""
    with db.read() as conn:
        return {row.name: Holder(row.name, row.owner, row.lease_until, row.taken_at)
                for row in conn.execute(select(leases).order_by(leases.c.name))}


def holder(db: Database, name: str, now: datetime) -> str | None:
    """Who holds ``name`` now; None when nobody does."""
    c = leases.c
    with db.read() as conn:
        owner: str | None = conn.execute(
            select(c.owner).where(c.name == name, c.owner.is_not(None),
                                  c.lease_until >= now)).scalar()
    return owner


class LeaseKeeper:
    """This process's leases on the periodic singletons, renewed together."""

    def __init__(self, db: Database, owner: str | None = None, *,
                 duration: timedelta = LEASE, renew_every: timedelta = RENEW_EVERY,
                 clock: Callable[[], datetime] = utcnow,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.db = db
        self.owner = owner or new_owner()
        self.duration = duration
        self.renew_every = renew_every
        self.clock = clock
        self.monotonic = monotonic
        self._wanted: list[str] = []
        self._held_until: dict[str, float] = {}
        # Set when a lease is wanted that the running keeper has not tried yet.
        self._wanted_more = asyncio.Event()

    def want(self, name: str) -> str:
        """Compete for ``name`` from now on (at once if ``run`` is running); returns the name."""
        if name not in self._wanted:
            self._wanted.append(name)
            self._wanted_more.set()
        return name

    def holds(self, name: str) -> bool:
        """True while this process's latest renewal of ``name`` has not run out."""
        until = self._held_until.get(name)
        return until is not None and self.monotonic() < until

    def renew(self) -> set[str]:
        """Take or renew every wanted lease; the names held afterwards."""
        started = self.monotonic()
        now = self.clock()
        for name in self._wanted:
            try:
                held = take(self.db, name, self.owner, now, self.duration)
            except Exception as exc:  # the store is away: what we held runs out by itself
                log.warning("lease not renewed", lease=name, error=str(exc))
                continue
            was = self.holds(name)
            if held:
                self._held_until[name] = started + self.duration.total_seconds()
                if not was:
                    log.info("lease taken; this process runs it now", lease=name)
            else:
                self._held_until.pop(name, None)
                if was:
                    log.warning("lease lost; another process runs it now", lease=name)
        return {name for name in self._wanted if self.holds(name)}

    def close(self) -> None:
        """Hand every lease back, so another process takes over without waiting."""
        self._held_until.clear()
        try:
            release_all(self.db, self.owner)
        except Exception as exc:  # the store may be gone at shutdown; the leases then run out
            log.warning("leases not released", error=str(exc))

    async def run(self) -> None:
        """Renew every ``renew_every`` (at once when a lease is newly wanted) until cancelled."""
        while True:
            self._wanted_more.clear()
            await finish_in_thread(self.renew)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.renew_every.total_seconds()):
                    await self._wanted_more.wait()


def guarded(keeper: LeaseKeeper | None, name: str, work: Callable[[], Any]) -> Callable[[], Any]:
    """``work`` run only while ``keeper`` holds ``name`` (always without a keeper)."""
    if keeper is None:
        return work
    keeper.want(name)

    def run() -> Any:
        if not keeper.holds(name):
            return None
        return work()

    return run
