"""The accounts readers on real files: cursor across restarts, rotation, truncation, formats."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from agent.detectors.accounts.authlog_source import FileFollower
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


def _read(follower: FileFollower) -> list[Any]:
    out: list[Any] = []
    follower.poll_once(out.append)
    return out


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
