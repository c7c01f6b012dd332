"""The harness itself: a start that fails says why and leaves no process behind."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.e2e import harness
from tests.e2e.harness import Collector


def processes_of(collector: Collector) -> list[psutil.Process]:
    """Every live process whose environment names this collector's data directory."""
    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if process.environ().get("COURTGUARD_COLLECTOR_DATA_DIR") == str(collector.data_dir):
                found.append(process)
    return found


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A loopback TCP port that accepts connections and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield int(listener.getsockname()[1])


def test_a_collector_that_exits_fails_the_wait_at_once_with_its_log(tmp_path: Path) -> None:
    """A collector whose store was never initialised exits; the wait reports that and its log."""
    collector = Collector(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'none.db'}",
                          tls=False)

    with pytest.raises(AssertionError, match="exited with 1 before it was ready") as failure:
        collector.start()

    assert "courtguard-collector migrate" in str(failure.value)
    assert collector.process is None
    assert processes_of(collector) == []


def test_a_collector_that_never_gets_ready_is_killed_at_the_ceiling(
    tmp_path: Path, silent_server: int
) -> None:
    """A collector stuck connecting to a database that never answers is killed, not orphaned."""
    collector = Collector(
        home=tmp_path, database_url=f"postgresql+psycopg://test@127.0.0.1:{silent_server}/test",
        tls=False,
    )

    with pytest.raises(AssertionError, match=r"still running but not ready after 2s"):
        collector.start(ready_ceiling=2)

    assert collector.process is None
    assert processes_of(collector) == []


def test_sweep_kills_and_names_what_was_never_stopped(tmp_path: Path) -> None:
    """A started collector nobody stopped is killed by the session-end sweep, which names it."""
    collector = Collector(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'c.db'}",
                          tls=False)
    collector.init()
    collector.start()
    assert collector.process is not None
    pid = collector.process.pid

    left = harness.sweep()

    assert left == [f"collector at {collector.url} (pid {pid})"]
    assert processes_of(collector) == []
    collector.process = None
