"""The host-state readers: loginctl of two systemd versions, mountinfo, contractors by NSS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.detectors.accounts.readers.host import (
    Directory,
    MountSource,
    parse_loginctl_json,
    parse_mountinfo,
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

