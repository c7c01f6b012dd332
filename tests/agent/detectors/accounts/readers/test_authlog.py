"""The auth log readers on real files: cursor across restarts, rotation, truncation, journal."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from agent.detectors.accounts.observations import AgentTampered, AuthRecord
from agent.detectors.accounts.readers.authlog import (
    Checkpoint,
    CheckpointPacer,
    FileFollower,
    JournalFollower,
)

FIXTURES = Path(__file__).parent / "fixtures"


LINE = (
    "2026-03-02T10:00:0{n}+08:00 ws sudo:    wb_a : TTY=pts/0 ; PWD=/ ; USER=root ; "
    "COMMAND=/bin/id{n}\n"
)


def _follower(tmp_path: Path, log: Path) -> FileFollower:
    return FileFollower([log], tmp_path / "cursor.json", "ws", 0.1)


def _read(follower: FileFollower, commit: bool = True) -> list[Any]:
    """What one poll emits; its checkpoints committed as the daemon would after handling."""
    out: list[Any] = []
    follower.poll_once(lambda got: out.extend(got if isinstance(got, list) else [got]))
    for item in out:
        if isinstance(item, Checkpoint) and commit:
            item.commit()
    return [item for item in out if not isinstance(item, Checkpoint)]


def test_first_start_skips_history_then_reads_new_lines(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_text(LINE.format(n=0))
    follower = _follower(tmp_path, log)
    follower.start_positions()
    assert _read(follower) == []
    with log.open("a") as handle:
        handle.write(LINE.format(n=1))
    (record,) = _read(follower)
    assert isinstance(record, AuthRecord) and record.command == "/bin/id1"


def test_restart_neither_repeats_nor_misses(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_text("")
    first = _follower(tmp_path, log)
    first.start_positions()
    with log.open("a") as handle:
        handle.write(LINE.format(n=1))
    assert len(_read(first)) == 1
    with log.open("a") as handle:  # written while the agent was down
        handle.write(LINE.format(n=2))
        handle.write(LINE.format(n=3)[:30])  # and a line still being written
    second = _follower(tmp_path, log)
    second.start_positions()
    assert [r.command for r in _read(second)] == ["/bin/id2"]
    with log.open("a") as handle:
        handle.write(LINE.format(n=3)[30:])
    assert [r.command for r in _read(second)] == ["/bin/id3"]


def test_lines_read_but_not_handled_are_read_again(tmp_path: Path) -> None:
    """A stop before the daemon handled a batch: its checkpoint is never committed."""
    log = tmp_path / "auth.log"
    log.write_text("")
    first = _follower(tmp_path, log)
    first.start_positions()
    with log.open("a") as handle:
        handle.write(LINE.format(n=1))
    assert len(_read(first, commit=False)) == 1
    second = _follower(tmp_path, log)
    second.start_positions()
    assert [r.command for r in _read(second)] == ["/bin/id1"]


def test_rotation_drains_the_old_file_first(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_text("")
    follower = _follower(tmp_path, log)
    follower.start_positions()
    with log.open("a") as handle:
        handle.write(LINE.format(n=1))
    os.rename(log, tmp_path / "auth.log.1")
    log.write_text(LINE.format(n=2))
    assert [r.command for r in _read(follower)] == ["/bin/id1", "/bin/id2"]


def test_truncation_in_place_is_reported(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_text(LINE.format(n=1) * 3)
    follower = _follower(tmp_path, log)
    follower.start_positions()
    with log.open("r+") as handle:
        handle.truncate(0)
    (event,) = _read(follower)
    assert isinstance(event, AgentTampered) and event.what == "log_truncated"


def test_journal_follower_resumes_after_the_handled_cursor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without journald here, a stand-in journalctl prints recorded-format JSON and its argv."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    argv_file = tmp_path / "argv"
    script = bin_dir / "journalctl"
    script.write_text(
        f'#!/bin/sh\necho "$@" > {argv_file}\ncat {FIXTURES / "synthetic-journal.jsonl"}\n'
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    cursor = tmp_path / "journal.cursor"
    follower = JournalFollower(cursor, "ws-it-01")
    out: list[Any] = []
    follower.run(lambda got: out.extend(got), threading.Event())
    records = [o for o in out if isinstance(o, AuthRecord)]
    assert [r.action for r in records] == ["sudo_refused", "session_open", "group_member_added"]
    assert {r.host for r in records} == {"ws-it-01"}
    assert "-n 0" in argv_file.read_text()  # first start: no history
    for item in out:
        if isinstance(item, Checkpoint):
            item.commit()
    assert cursor.read_text().endswith("x=5")  # the last entry, though it parsed to nothing
    follower.run(lambda got: None, threading.Event())
    assert "--after-cursor=s=1a2b;i=105;b=3c4d;m=5000;t=6058a1f0c4000;x=5" in argv_file.read_text()


STAFF_LINE = (
    "2026-03-02T10:00:0{n}+08:00 ws sudo:   admin : TTY=pts/1 ; PWD=/ ; USER=root ; "
    "COMMAND=/bin/ls{n}\n"
)


def test_filtered_out_lines_move_the_cursor_only_now_and_then(tmp_path: Path) -> None:
    """A busy log of staff lines costs a cursor write per pacing interval, not per poll;
    a kept record still carries its checkpoint at once, so it is never read twice."""
    log = tmp_path / "auth.log"
    log.write_text("")
    now = [1000.0]
    follower = FileFollower(
        [log], tmp_path / "cursor.json", "ws", 0.1, keep=lambda actor, target: actor == "wb_a"
    )
    follower.pacer = CheckpointPacer(idle_s=10, clock=lambda: now[0])
    follower.start_positions()
    emitted: list[Any] = []

    def poll(line: str) -> list[Any]:
        with log.open("a") as handle:
            handle.write(line)
        emitted.clear()
        follower.poll_once(lambda got: emitted.extend(got if isinstance(got, list) else [got]))
        now[0] += 1
        return emitted

    assert [type(i) for i in poll(STAFF_LINE.format(n=1))] == [Checkpoint]  # the first one
    for n in range(2, 9):
        assert poll(STAFF_LINE.format(n=n)) == []
    kinds = [type(i) for i in poll(LINE.format(n=9))]
    assert kinds == [AuthRecord, Checkpoint]
    emitted[-1].commit()
    assert follower._load_cursor()[str(log)]["offset"] == log.stat().st_size
    assert poll(STAFF_LINE.format(n=1)) == []
    now[0] += 10
    assert [type(i) for i in poll(STAFF_LINE.format(n=2))] == [Checkpoint]


def test_a_stop_hands_on_the_cursor_it_held_back(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_text("")
    follower = FileFollower(
        [log], tmp_path / "cursor.json", "ws", 0.05, keep=lambda actor, target: False
    )
    follower.pacer = CheckpointPacer(idle_s=3600)
    stop = threading.Event()
    emitted: list[Any] = []
    reader = threading.Thread(
        target=follower.run, args=(lambda got: emitted.extend(got), stop), daemon=True
    )
    reader.start()
    for n in range(1, 4):
        with log.open("a") as handle:
            handle.write(STAFF_LINE.format(n=n))
        time.sleep(0.15)
    stop.set()
    reader.join(5)
    checkpoints = [i for i in emitted if isinstance(i, Checkpoint)]
    assert 1 <= len(checkpoints) <= 2  # the first poll's, and the held-back one at the stop
    checkpoints[-1].commit()
    assert follower._load_cursor()[str(log)]["offset"] == log.stat().st_size

