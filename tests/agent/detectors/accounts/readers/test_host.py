"""The host-state readers: loginctl of two systemd versions, mountinfo, contractors by NSS."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from agent.detectors.accounts.readers.host import (
    Directory,
    MountSource,
    SessionSource,
    parse_loginctl_json,
    parse_mountinfo,
    real_uid,
)
from agent.policy.loader import load_policy_dir

FIXTURES = Path(__file__).parent / "fixtures"


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


def test_mount_source_waits_without_a_timer_and_stops_when_told() -> None:
    """The mount reader blocks on /proc/self/mounts alone; stop() ends the wait at once."""
    source = MountSource("ws")
    stop = threading.Event()
    reader = threading.Thread(target=source.run, args=(lambda _: None, stop), daemon=True)
    reader.start()
    stop.set()
    source.stop()
    reader.join(60)  # a deadline for a hang, not a speed
    assert not reader.is_alive()


def test_sessions_are_listed_again_only_when_logind_or_utmp_changed(tmp_path: Path) -> None:
    """An unchanged session directory and utmp cost no listing; a change brings one."""
    utmp = tmp_path / "utmp"
    utmp.write_bytes(b"")
    source = SessionSource("ws", poll_s=5, markers=(tmp_path / "sessions", utmp))
    source.loginctl = None  # this host's utmp, through psutil
    source.mode = "utmp"
    for _ in range(3):
        source.poll_once(lambda _: None)
    assert source.listings == 1
    utmp.write_bytes(b"x")  # a login writes utmp
    source.poll_once(lambda _: None)
    assert source.listings == 2


def test_directory_names_contractors_through_the_policy_and_nss() -> None:
    """Pattern-selected names count even without a local account; root and staff do not."""
    policy = load_policy_dir(Path(__file__).resolve().parents[5] / "policies").section("accounts")
    directory = Directory()
    directory.update(policy)  # type: ignore[arg-type]  # section() gives the base PolicyDocument
    assert directory.is_contractor("wb_nobody_here")
    assert not directory.is_contractor("root")
    assert not directory.names_contractor("root", "root")  # sudo by staff
    assert directory.names_contractor("root", "wb_x")
    assert directory.names_contractor("#1003", "root")
    assert directory.contractor_by_uid(0) is None



def test_real_uid_reads_this_process_and_none_for_a_gone_one() -> None:
    """The new-process filter reads the real uid from /proc; a vanished pid gives None."""
    assert real_uid(os.getpid()) == os.getuid()
    assert real_uid(2**22 + 1) is None  # above pid_max: never a process
