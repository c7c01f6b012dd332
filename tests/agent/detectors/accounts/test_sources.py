"""The accounts readers on real files: cursor across restarts, rotation, truncation, formats."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from agent.detectors.accounts.authlog_source import (
    Checkpoint,
    CheckpointPacer,
    FileFollower,
    JournalFollower,
)
from agent.detectors.accounts.host_sources import (
    MountSource,
    parse_loginctl_json,
    parse_mountinfo,
)
from agent.detectors.accounts.observations import AgentTampered, AuthRecord

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


def test_loginctl_json_of_two_systemd_versions() -> None:
    old = parse_loginctl_json((FIXTURES / "synthetic-loginctl-252.json").read_text())
    new = parse_loginctl_json((FIXTURES / "synthetic-loginctl-256.json").read_text())
    assert old is not None and new is not None
    assert [s["user"] for s in old] == ["wb_zhang", "root"]
    assert [(s["session"], s["class"]) for s in new] == [("5", "user"), ("7", "user")]
    assert parse_loginctl_json("No sessions.") is None


def test_mountinfo_of_this_machine_and_a_usb_stick() -> None:
    mounts = parse_mountinfo(Path("/proc/self/mountinfo").read_text())
    assert any(m["mountpoint"] == "/" for m in mounts.values())
    usb = parse_mountinfo(
        "36 35 8:33 / /media/wb\\040zhang/KINGSTON rw,nosuid - vfat /dev/sdc1 rw,uid=1003\n"
    )
    assert usb["36"] == {
        "mountpoint": "/media/wb zhang/KINGSTON",
        "fstype": "vfat",
        "source": "/dev/sdc1",
    }


def test_mount_source_reports_changes_only(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text("1 0 8:1 / / rw - ext4 /dev/sda1 rw\n")
    source = MountSource("ws", info)
    events: list[Any] = []
    source.poll_once(events.append)
    assert events == []
    info.write_text(
        "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n2 1 8:33 / /media/x rw - vfat /dev/sdz9 rw\n"
    )
    source.poll_once(events.append)
    assert [(e.action, e.mountpoint, e.removable) for e in events] == [
        ("mounted", "/media/x", False)
    ]


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


def test_directory_names_contractors_through_the_policy_and_nss() -> None:
    """Pattern-selected names count even without a local account; root and staff do not."""
    from agent.detectors.accounts.host_sources import Directory
    from agent.policy.loader import load_policy_dir

    policy = load_policy_dir(Path(__file__).resolve().parents[4] / "policies").section("accounts")
    directory = Directory()
    directory.update(policy)  # type: ignore[arg-type]
    assert directory.is_contractor("wb_nobody_here")
    assert not directory.is_contractor("root")
    assert not directory.names_contractor("root", "root")  # sudo by staff
    assert directory.names_contractor("root", "wb_x")
    assert directory.names_contractor("#1003", "root")
    assert directory.contractor_by_uid(0) is None


def test_file_source_on_real_inotify(tmp_path: Path) -> None:
    """A key added under a contractor's ~/.ssh, an emptied history, a new protected file."""
    import getpass

    from agent.detectors.accounts.file_source import FileSource, build_plan
    from agent.detectors.accounts.observations import FileTouched

    home, protected = tmp_path / "home", tmp_path / "cases"
    (home / ".ssh").mkdir(parents=True)
    protected.mkdir()
    history = home / ".bash_history"
    history.write_text("ls\n")
    source = FileSource("ws-it-01")
    source.replan(build_plan([str(protected)], {"wb_a": home}, [], []))
    seen: list[Any] = []
    stop = threading.Event()
    thread = threading.Thread(target=source.run, args=(seen.append, stop), daemon=True)
    thread.start()
    try:
        time.sleep(0.3)  # the observer has scheduled its watches
        (home / ".ssh" / "authorized_keys").write_text("ssh-ed25519 AAAA test\n")
        history.write_text("")
        (protected / "case.txt").write_text("x")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (
            any(isinstance(o, AgentTampered) for o in seen)
            and any(isinstance(o, FileTouched) and o.purpose == "protected" for o in seen)
            and any(isinstance(o, FileTouched) and o.purpose == "persistence" for o in seen)
        ):
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(10)
    keys = next(o for o in seen if isinstance(o, FileTouched) and o.purpose == "persistence")
    assert (keys.account, keys.attribution) == ("wb_a", "file-owner")
    cleared = next(o for o in seen if isinstance(o, AgentTampered))
    assert (cleared.what, cleared.account) == ("history_cleared", "wb_a")
    created = next(
        o
        for o in seen
        if isinstance(o, FileTouched) and o.purpose == "protected" and o.action == "created"
    )
    assert created.account == getpass.getuser() and created.attribution == "file-owner"


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
