"""Which process owns a flow: the socket table gives the inode, ``/proc/<pid>/fd`` the owner.

Best effort by nature: a process that sent one datagram and exited is gone
before anyone can ask. The answer says why it is missing. Scanning every
process's descriptors is the expensive step, so the inode map is rebuilt at
most ``rescan_every_s`` and only when an inode is not in it.
"""

from __future__ import annotations

import ipaddress
import os
import pwd
import time
from pathlib import Path
from typing import Final

from agent.detectors.outreach.evidence import ProcessEvidence as ProcessFacts

PROC: Final = Path("/proc")
_TABLES: Final = {"tcp": ("tcp", "tcp6"), "udp": ("udp", "udp6")}
DESCRIBE_TTL_S: Final = 5.0
MAX_DESCRIBED: Final = 1024


def _hex_address(text: str) -> str:
    raw = bytes.fromhex(text)
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw[::-1]))
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    address = ipaddress.IPv6Address(words)
    return str(address.ipv4_mapped or address)


def socket_inodes(
    protocol: str, local_port: int, proc: Path = PROC, ipv6: bool | None = None
) -> list[tuple[str, int]]:
    """(local address, inode) of sockets bound to ``local_port`` in this namespace's tables.

    ``ipv6`` narrows the search to one family's table (IPv4 traffic can also
    come from a dual-stack socket, listed in the v6 table, so the caller
    passes None when it must look in both).
    """
    found = []
    tables: tuple[str, ...] = _TABLES.get(protocol, ())
    if ipv6 is not None and tables:
        tables = (tables[1],) if ipv6 else (tables[0],)
    for table in tables:
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10:
                continue
            address, _, port = fields[1].partition(":")
            if int(port, 16) == local_port and fields[9] != "0":
                found.append((_hex_address(address), int(fields[9])))
    return found


class Attributor:
    """Maps a flow's local port to its process; keeps a bounded, periodically rebuilt inode map."""

    def __init__(self, proc: Path = PROC, rescan_every_s: float = 0.5) -> None:
        self.proc = proc
        self.rescan_every_s = rescan_every_s
        self._owners: dict[int, int] = {}
        self._scanned_at = -1e9
        #: pid -> (when read, facts): a burst of flows from one process reads /proc once.
        self._described: dict[int, tuple[float, ProcessFacts]] = {}

    def _rescan(self) -> None:
        owners: dict[int, int] = {}
        for entry in os.scandir(self.proc):
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            try:
                for fd in os.scandir(f"{entry.path}/fd"):
                    try:
                        target = os.readlink(fd.path)
                    except OSError:
                        continue
                    if target.startswith("socket:["):
                        owners[int(target[8:-1])] = pid
            except OSError:
                continue
        self._owners = owners
        self._scanned_at = time.monotonic()

    def owner(
        self, protocol: str, local_port: int | None, ipv6: bool = False
    ) -> tuple[ProcessFacts | None, str]:
        """The owning process, or None and the reason it is unknown."""
        if local_port is None or protocol not in _TABLES:
            return None, f"{protocol} has no port to look up"
        # The family's own table first; a dual-stack socket shows up only in the v6 one.
        found = socket_inodes(protocol, local_port, self.proc, ipv6) or (
            [] if ipv6 else socket_inodes(protocol, local_port, self.proc, True)
        )
        inodes = [inode for _addr, inode in found]
        if not inodes:
            return None, "socket already closed when the flow was seen"
        pid = next((self._owners[i] for i in inodes if i in self._owners), None)
        if pid is None and time.monotonic() - self._scanned_at >= self.rescan_every_s:
            self._rescan()
            pid = next((self._owners[i] for i in inodes if i in self._owners), None)
        if pid is None:
            return None, "socket owner not found (process exited or attribution rate-limited)"
        return self._describe(pid)

    def _describe(self, pid: int) -> tuple[ProcessFacts | None, str]:
        now = time.monotonic()
        cached = self._described.get(pid)
        if cached is not None and now - cached[0] < DESCRIBE_TTL_S:
            return cached[1], ""
        facts, note = process_facts(pid, self.proc)
        if facts is not None:
            if len(self._described) >= MAX_DESCRIBED:
                self._described.clear()
            self._described[pid] = (now, facts)
        return facts, note


def process_facts(pid: int, proc: Path = PROC) -> tuple[ProcessFacts | None, str]:
    base = proc / str(pid)
    try:
        name = (base / "comm").read_text().strip()
        cmdline = (base / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        uid = int((base / "status").read_text().split("\nUid:", 1)[1].split()[0])
    except (OSError, IndexError, ValueError):
        return None, f"process {pid} exited before it could be described"
    try:
        exe = os.readlink(base / "exe")
    except OSError:
        exe = ""
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    return (
        ProcessFacts(
            pid=pid, name=name[:64], exe=exe[:512], cmdline=cmdline.strip()[:512], user=user[:64]
        ),
        "",
    )
