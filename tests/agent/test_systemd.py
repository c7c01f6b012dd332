"""sd_notify: datagrams to NOTIFY_SOCKET (path or abstract), silence without systemd."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

from agent import systemd


def test_notify_without_systemd_is_a_no_op() -> None:
    """With no NOTIFY_SOCKET nothing is sent and False is returned."""
    assert systemd.notify("READY=1", environ={}) is False


def test_notify_sends_to_a_path_socket(tmp_path: Path) -> None:
    """The state string arrives as one datagram on the named socket."""
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind(str(path))
        assert systemd.notify("READY=1\nSTATUS=ok", environ={"NOTIFY_SOCKET": str(path)})
        assert receiver.recv(100) == b"READY=1\nSTATUS=ok"


def test_notify_sends_to_an_abstract_socket() -> None:
    """An '@' address is the abstract namespace."""
    name = f"courtguard-test-{uuid.uuid4()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind("\0" + name)
        assert systemd.notify("WATCHDOG=1", environ={"NOTIFY_SOCKET": "@" + name})
        assert receiver.recv(100) == b"WATCHDOG=1"


def test_notify_to_a_vanished_socket_returns_false(tmp_path: Path) -> None:
    """A socket that is gone is not an error for the agent."""
    assert systemd.notify("READY=1", environ={"NOTIFY_SOCKET": str(tmp_path / "gone")}) is False


def test_watchdog_interval_is_half_watchdog_usec() -> None:
    """WATCHDOG_USEC=60 s means a ping every 30 s, only for the process it names."""
    pid = str(os.getpid())
    assert systemd.watchdog_interval({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": pid}) == 30
    assert systemd.watchdog_interval({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "1"}) is None
    assert systemd.watchdog_interval({}) is None
