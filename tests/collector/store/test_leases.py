"""Leases: one process at a time holds a singleton; a dead holder's lease moves when it runs out."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from collector.periodic import run_periodically
from collector.store import leases
from collector.store.database import Database
from collector.store.leases import LeaseKeeper

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
S = timedelta(seconds=1)


def test_one_holder_at_a_time_until_it_runs_out(db: Database) -> None:
    assert leases.take(db, "retention", "a", T0)
    assert leases.take(db, "retention", "a", T0 + 10 * S)  # a renewal
    assert not leases.take(db, "retention", "b", T0 + 20 * S)
    assert leases.holder(db, "retention", T0 + 20 * S) == "a"
    # a renewed at +10 s: its lease lasts until +40 s, and only then does b get it.
    assert not leases.take(db, "retention", "b", T0 + 10 * S + leases.LEASE)
    assert leases.take(db, "retention", "b", T0 + 11 * S + leases.LEASE)
    assert not leases.take(db, "retention", "a", T0 + 12 * S + leases.LEASE)
    row = leases.holders(db)["retention"]
    assert row.owner == "b" and row.taken_at == T0 + 11 * S + leases.LEASE


def test_release_hands_over_at_once(db: Database) -> None:
    assert leases.take(db, "router", "a", T0)
    assert leases.take(db, "export:siem", "a", T0)
    leases.release(db, "router", "b")  # not b's to give
    assert not leases.take(db, "router", "b", T0 + S)
    leases.release_all(db, "a")
    assert leases.holder(db, "router", T0 + S) is None
    assert leases.take(db, "router", "b", T0 + S)
    assert leases.take(db, "export:siem", "b", T0 + S)


def test_racing_takers_get_one_holder(db: Database) -> None:
    """Eight threads take the same free lease at once: exactly one gets it."""
    barrier = threading.Barrier(8)
    won: list[str] = []

    def contend(owner: str) -> None:
        barrier.wait()
        if leases.take(db, "correlation:x", owner, T0):
            won.append(owner)

    threads = [threading.Thread(target=contend, args=(f"p{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1
    assert leases.holder(db, "correlation:x", T0) == won[0]


class Clock:
    def __init__(self) -> None:
        self.wall = T0
        self.mono = 1000.0

    def now(self) -> datetime:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
        self.mono += seconds


def test_keepers_share_out_and_take_over_from_a_dead_one(db: Database) -> None:
    clock = Clock()
    first, second = (LeaseKeeper(db, owner, clock=clock.now, monotonic=clock.monotonic)
                     for owner in ("first", "second"))
    for keeper in (first, second):
        keeper.want("retention")
        keeper.want("calendar-monitor")
    assert first.renew() == {"retention", "calendar-monitor"}
    assert second.renew() == set()
    # first stops renewing (killed): it stops believing it holds the leases when they run
    # out by its own clock, and second gets them on its first renewal after that.
    clock.advance(leases.LEASE.total_seconds() - 1)
    assert first.holds("retention") and second.renew() == set()
    clock.advance(2)
    assert not first.holds("retention")
    assert second.renew() == {"retention", "calendar-monitor"}
    assert first.renew() == set()


def test_a_keeper_that_cannot_reach_the_store_stops_holding(db: Database,
                                                            tmp_path: Path) -> None:
    clock = Clock()
    keeper = LeaseKeeper(db, "only", clock=clock.now, monotonic=clock.monotonic)
    keeper.want("retention")
    assert keeper.renew() == {"retention"}
    # The store goes away: every renewal fails from now on.
    keeper.db = Database(sa.create_engine(f"sqlite:///{tmp_path}/missing/dir/collector.db"))
    clock.advance(leases.LEASE.total_seconds() / 2)
    assert keeper.renew() == {"retention"}  # still within the last successful renewal
    clock.advance(leases.LEASE.total_seconds())
    assert keeper.renew() == set()


def test_a_periodic_pass_runs_only_in_the_holding_process(db: Database) -> None:
    ran: dict[str, int] = {"first": 0, "second": 0}
    twenty = {"first": threading.Event(), "second": threading.Event()}

    async def scenario() -> None:
        keepers = [LeaseKeeper(db, name, renew_every=timedelta(seconds=0.05))
                   for name in ("first", "second")]

        def work(name: str) -> None:
            ran[name] += 1
            if ran[name] >= 20:
                twenty[name].set()

        loops = [asyncio.create_task(run_periodically(
            "test pass", lambda name=keeper.owner: work(name), 0.01, first_after_s=0,
            leases=keeper, lease="test-pass")) for keeper in keepers]
        renewals = [asyncio.create_task(keepers[0].run())]
        assert await asyncio.to_thread(twenty["first"].wait, 30)
        renewals.append(asyncio.create_task(keepers[1].run()))
        # Several of second's renewals come and go while first holds the lease.
        await asyncio.sleep(0.3)
        assert ran["second"] == 0
        # The holder shuts down and hands over; the other carries on.
        renewals[0].cancel()
        keepers[0].close()
        assert await asyncio.to_thread(twenty["second"].wait, 30)
        for task in [*loops, *renewals]:
            task.cancel()
        await asyncio.gather(*loops, *renewals, return_exceptions=True)

    asyncio.run(asyncio.wait_for(scenario(), 90))


def test_owner_names_are_stable_per_data_dir_and_never_shared(tmp_path: Path) -> None:
    first = leases.claim_owner(tmp_path)
    second = leases.claim_owner(tmp_path)  # a second live process on the same directory
    assert first.owner != second.owner
    copied = tmp_path / "copy"
    shutil.copytree(tmp_path / "leases", copied / "leases")
    elsewhere = leases.claim_owner(copied)  # a copy of the directory is another collector
    assert elsewhere.owner not in (first.owner, second.owner)
    name = first.owner
    first.close()
    again = leases.claim_owner(tmp_path)
    assert again.owner == name
    for claim in (second, elsewhere, again):
        claim.close()


def test_a_killed_holders_replacement_takes_its_leases_at_once(db: Database,
                                                               tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import sys, time\n"
            "from pathlib import Path\n"
            "from collector.store.leases import claim_owner\n"
            "claim = claim_owner(Path(sys.argv[1]))\n"
            "print(claim.owner, flush=True)\n"
            "time.sleep(600)\n"), str(tmp_path)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        owner = holder.stdout.readline().strip()
        assert owner
        now = datetime.now(UTC)
        assert leases.take(db, "router", owner, now)
        # While it lives (even stopped), its name is not free.
        holder.send_signal(signal.SIGSTOP)
        alive = leases.claim_owner(tmp_path)
        assert alive.owner != owner
        assert not leases.take(db, "router", alive.owner, now + S)
        alive.close()
        holder.kill()
        holder.wait(timeout=30)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=30)
        if holder.stdout is not None:
            holder.stdout.close()
    replacement = leases.claim_owner(tmp_path)
    try:
        assert replacement.owner == owner
        # Long before the dead process's lease runs out, its replacement renews it.
        assert leases.take(db, "router", replacement.owner, now + 2 * S)
        assert not leases.take(db, "router", "another-process", now + 3 * S)
    finally:
        replacement.close()


def test_an_unusable_data_dir_gives_a_random_owner(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    claim = leases.claim_owner(blocked)
    assert not claim.held and "/" in claim.owner
    assert leases.claim_owner(blocked).owner != claim.owner
