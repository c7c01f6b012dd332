"""Flow owners from /proc: socket tables captured from a real kernel, a process tree built here."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from agent.detectors.outreach.readers.attribution import (
    Attributor,
    _hex_address,
    process_facts,
    socket_inodes,
)
from tests.agent.detectors.outreach.readers.captured import FIXTURES

PID = 4242


@pytest.fixture
def sockets() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "proc-net-sockets.json").read_text())
    return data


@pytest.fixture
def proc(tmp_path: Path, sockets: dict[str, Any]) -> Path:
    """A /proc with the captured tcp tables and one process owning both listeners."""
    root = tmp_path / "proc"
    (root / "net").mkdir(parents=True)
    shutil.copy(FIXTURES / "proc-net-tcp.txt", root / "net" / "tcp")
    shutil.copy(FIXTURES / "proc-net-tcp6.txt", root / "net" / "tcp6")
    process = root / str(PID)
    (process / "fd").mkdir(parents=True)
    for fd, table in ((3, "tcp4"), (4, "tcp6")):
        os.symlink(f"socket:[{sockets[table]['inode']}]", process / "fd" / str(fd))
    os.symlink("/dev/null", process / "fd" / "5")
    (process / "comm").write_text("curl\n")
    (process / "cmdline").write_bytes(b"curl\0https://203.0.113.9/\0")
    (process / "status").write_text("Name:\tcurl\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n")
    os.symlink("/usr/bin/curl", process / "exe")
    return root


def test_hex_addresses_of_both_families() -> None:
    assert _hex_address("0100007F") == "127.0.0.1"
    assert _hex_address("00000000000000000000000000000000") == "::"
    # An IPv4-mapped address in the v6 table reads as the IPv4 address.
    assert _hex_address("0000000000000000FFFF00000100007F") == "127.0.0.1"


def test_socket_inodes_find_each_listener_in_its_table(
    proc: Path, sockets: dict[str, Any]
) -> None:
    v4, v6 = sockets["tcp4"], sockets["tcp6"]
    assert socket_inodes("tcp", v4["port"], proc, ipv6=False) == [("127.0.0.1", v4["inode"])]
    assert socket_inodes("tcp", v6["port"], proc, ipv6=True) == [("::", v6["inode"])]
    assert socket_inodes("tcp", v6["port"], proc, ipv6=False) == []
    assert socket_inodes("tcp", v4["port"], proc) == [("127.0.0.1", v4["inode"])]
    assert socket_inodes("udp", v4["port"], proc) == []  # no udp tables: nothing, no error
    assert socket_inodes("icmp", 0, proc) == []


def test_owner_of_an_ipv4_flow_and_of_a_dual_stack_socket(
    proc: Path, sockets: dict[str, Any]
) -> None:
    attributor = Attributor(proc)
    owner, note = attributor.owner("tcp", sockets["tcp4"]["port"])
    assert note == ""
    assert owner is not None
    assert (owner.pid, owner.name, owner.exe, owner.user) == (PID, "curl", "/usr/bin/curl", "root")
    assert owner.cmdline == "curl https://203.0.113.9/"
    # IPv4 traffic from a socket bound to [::] is listed only in the v6 table.
    dual, _ = attributor.owner("tcp", sockets["tcp6"]["port"], ipv6=False)
    assert dual is not None and dual.pid == PID


def test_unknown_owners_say_why(proc: Path, sockets: dict[str, Any]) -> None:
    attributor = Attributor(proc)
    assert attributor.owner("icmp", None) == (None, "icmp has no port to look up")
    assert attributor.owner("tcp", 1) == (None, "socket already closed when the flow was seen")
    shutil.rmtree(proc / str(PID))
    owner, note = Attributor(proc).owner("tcp", sockets["tcp4"]["port"])
    assert owner is None
    assert note.startswith("socket owner not found")


def test_process_that_exited_mid_read(proc: Path) -> None:
    (proc / str(PID) / "status").unlink()
    assert process_facts(PID, proc) == (None, f"process {PID} exited before it could be described")
