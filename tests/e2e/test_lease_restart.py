"""A collector killed and restarted on the same data directory takes its leases back at once.

Its lease owner name is stable (``collector.store.leases.claim_owner``): the
replacement gets the dead process's name, so it renews the leases at once
instead of waiting them out. The leases here last ten minutes: a process with
a new name would hold none of them within this test's wait.
"""

from __future__ import annotations

import signal
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import Collector, wait_until

pytestmark = pytest.mark.e2e

LONG_LEASE_S = 600


def _leases(instance: Collector) -> dict[str, tuple[Any, datetime]]:
    return {row[0]: (row[1], row[2]) for row in
            instance.query("SELECT name, owner, lease_until FROM leases")}


def _at(value: Any) -> datetime:
    """A lease time as a datetime (SQLite hands raw text back)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=None) if moment.tzinfo is None else moment


def test_a_restarted_collector_renews_its_own_leases_at_once(tmp_path: Path,
                                                             database_url: str) -> None:
    instance = Collector(home=tmp_path, database_url=database_url,
                         extra_env={"COURTGUARD_COLLECTOR_LEASE_S": str(LONG_LEASE_S)})
    instance.init()
    instance.start()
    try:
        before = wait_until(lambda: (lambda rows: rows if {"router", "retention"} <= set(rows)
                                     and all(o for o, _ in rows.values()) else None)(
            _leases(instance)), 60, "the first process holding its leases")
        owner = before["router"][0]
        assert owner.rsplit("-", 1)[1] == "0"  # the data directory's first slot
        assert all(o == owner for o, _ in before.values())
        instance.stop(signal.SIGKILL)
        instance.start()

        def renewed() -> dict[str, tuple[Any, datetime]] | None:
            rows = _leases(instance)
            moved = all(_at(rows[name][1]) > _at(before[name][1])
                        for name in ("router", "retention"))
            return rows if moved else None

        after = wait_until(renewed, 60, "the restarted process renewing the leases")
        for name in ("router", "retention"):
            assert after[name][0] == owner
            # Renewed before the dead process's lease ran out: no other name could have.
            renewed_at = _at(after[name][1]) - timedelta(seconds=LONG_LEASE_S)
            assert renewed_at < _at(before[name][1])
    finally:
        instance.stop()
