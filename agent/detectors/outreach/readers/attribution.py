"""Which process owns a flow: the socket table gives the inode, ``/proc/<pid>/fd`` the owner.

Two ways to the socket: ``socket_diag`` asks the kernel (sock_diag netlink,
``SOCK_DIAG_BY_FAMILY``) for the one socket of a flow's exact addresses and
ports and gets its inode, uid and cgroup id in one answer; ``socket_inodes``
reads ``/proc/net/{tcp,udp}[6]`` by local port (the fallback, and what a
logged packet uses). Either way the inode is then found among the processes'
descriptors: first in the processes that owned recent sockets, then in the
processes of the socket's uid, newest first, and only then in all of them.

Best effort by nature when the packet was not held: a process that sent one
datagram and exited is gone before anyone can ask. The answer says why it is
missing, and ``SocketFacts`` keeps what the kernel still knows (uid, gid,
cgroup, hence the systemd unit or the user session).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import ipaddress
import itertools
import os
import pwd
import socket
import struct
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from agent.detectors.outreach.evidence import ProcessEvidence as ProcessFacts
from agent.detectors.outreach.readers.netlink import NLMSG_ERROR, attributes, messages

PROC: Final = Path("/proc")
_TABLES: Final = {"tcp": ("tcp", "tcp6"), "udp": ("udp", "udp6")}
DESCRIBE_TTL_S: Final = 5.0
MAX_DESCRIBED: Final = 1024
#: Processes that owned a recent socket are searched first: a program opens many.
RECENT_OWNERS: Final = 64
CGROUP_MAP_EVERY_S: Final = 5.0

NETLINK_SOCK_DIAG: Final = 4
SOCK_DIAG_BY_FAMILY: Final = 20
INET_DIAG_NOCOOKIE: Final = 0xFFFFFFFF
INET_DIAG_CGROUP_ID: Final = 21
_IPPROTO: Final = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP}
_DIAG_REQUEST = struct.Struct("=BBBxI")
_DIAG_MESSAGE = struct.Struct("=BBBB48sIIIII")


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


@dataclass(frozen=True)
class SocketFacts:
    """What sock_diag says about one socket."""

    inode: int
    uid: int
    cgroup_id: int | None = None


@dataclass(frozen=True)
class Attribution:
    """The owner of a flow, or what is known without it (``note`` says why it is missing)."""

    process: ProcessFacts | None = None
    note: str = ""
    uid: int | None = None
    gid: int | None = None
    cgroup: str = ""
    unit: str = ""


def _diag_request(protocol: str, local: str, lport: int, remote: str, rport: int) -> bytes:
    family = socket.AF_INET6 if ":" in local else socket.AF_INET
    packed_l, packed_r = socket.inet_pton(family, local), socket.inet_pton(family, remote)
    # Exact look-ups name the socket by its own side as "src" for TCP; udp_dump_one
    # swaps the two ("for historical reasons", net/ipv4/udp_diag.c).
    if protocol == "udp":
        (packed_l, lport), (packed_r, rport) = (packed_r, rport), (packed_l, lport)
    sockid = (
        struct.pack("!HH", lport, rport)
        + packed_l.ljust(16, b"\0")
        + packed_r.ljust(16, b"\0")
        + struct.pack("=III", 0, INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE)
    )
    body = _DIAG_REQUEST.pack(family, _IPPROTO[protocol], 0, 0xFFFFFFFF) + sockid
    header = struct.pack("=LHHLL", 16 + len(body), SOCK_DIAG_BY_FAMILY, 0x1, 0, 0)
    return header + body


class _Gone(Exception):
    """The kernel answered: no such socket (it is closed)."""


def _parse_diag(data: bytes) -> SocketFacts | None:
    for kind, _flags, body in messages(data):
        if kind == NLMSG_ERROR and struct.unpack_from("=i", body)[0] == -errno.ENOENT:
            raise _Gone
        if kind != SOCK_DIAG_BY_FAMILY or len(body) < _DIAG_MESSAGE.size:
            return None
        *_head, uid, inode = _DIAG_MESSAGE.unpack_from(body)
        cgroup = attributes(body, _DIAG_MESSAGE.size).get(INET_DIAG_CGROUP_ID)
        cgroup_id = struct.unpack("=Q", cgroup[:8])[0] if cgroup and len(cgroup) >= 8 else None
        return SocketFacts(inode=inode, uid=uid, cgroup_id=cgroup_id) if inode else None
    return None


def cgroup_of(pid: int, proc: Path = PROC) -> str:
    """The process's cgroup v2 path (the systemd hierarchy on a hybrid host), or ""."""
    try:
        lines = (proc / str(pid) / "cgroup").read_text().splitlines()
    except OSError:
        return ""
    paths = {line.split(":", 2)[1]: line.split(":", 2)[2] for line in lines if line.count(":") >= 2}
    unified = paths.get("", "")
    return unified if unified not in {"", "/"} else paths.get("name=systemd", unified)


def unit_of(cgroup: str) -> str:
    """The systemd unit a cgroup path belongs to (``cups.service``, ``session-3.scope``), or ""."""
    for part in reversed(cgroup.strip("/").split("/")):
        if part.endswith((".service", ".scope")):
            return part
    for part in reversed(cgroup.strip("/").split("/")):
        if part.endswith(".slice") and part != "-.slice":
            return part
    return ""


def cgroup_root() -> Path:
    """Where the cgroup v2 hierarchy is mounted (``unified`` beside v1 on hybrid hosts)."""
    unified = Path("/sys/fs/cgroup/unified")
    return unified if (unified / "cgroup.procs").exists() else Path("/sys/fs/cgroup")


class Attributor:
    """Finds a flow's socket and its process; keeps bounded caches of inodes, pids and cgroups."""

    def __init__(self, proc: Path = PROC, rescan_every_s: float = 0.5) -> None:
        self.proc = proc
        self.rescan_every_s = rescan_every_s
        self._owners: dict[int, int] = {}
        self._recent: OrderedDict[int, None] = OrderedDict()
        self._scanned_at = -1e9
        #: pid -> (when read, facts): a burst of flows from one process reads /proc once.
        self._described: dict[int, tuple[float, ProcessFacts]] = {}
        self._cgroups: dict[int, str] = {}
        self._cgroups_at = -1e9
        self._hashes: dict[tuple[int, int, int, int], str] = {}
        self._diag: socket.socket | None = None

    def close(self) -> None:
        if self._diag is not None:
            self._diag.close()
            self._diag = None

    def __del__(self) -> None:
        self.close()

    # -- the socket ----------------------------------------------------------------

    def socket_diag(
        self, protocol: str, local: str, lport: int, remote: str, rport: int
    ) -> SocketFacts | None:
        """The one socket of this exact flow, from the kernel; None when it cannot say.

        Raises ``_Gone`` when the kernel says there is no such socket.
        """
        if protocol not in _IPPROTO:
            return None
        try:
            if self._diag is None:
                self._diag = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG)
                self._diag.settimeout(1)
            self._diag.send(_diag_request(protocol, local, lport, remote, rport))
            return _parse_diag(self._diag.recv(1 << 16))
        except (OSError, ValueError):
            self.close()
            return None

    # -- the process -----------------------------------------------------------------

    def _socket_owners(self, pid: int) -> dict[int, int]:
        owners: dict[int, int] = {}
        try:
            for fd in os.scandir(f"{self.proc}/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(fd.path)
                    if target.startswith("socket:["):
                        owners[int(target[8:-1])] = pid
        except OSError:
            pass
        return owners

    def _pids(self) -> list[int]:
        return sorted(
            (int(e.name) for e in os.scandir(self.proc) if e.name.isdigit()), reverse=True
        )

    def _owned_by(self, uid: int | None) -> Iterator[int]:
        """Processes of ``uid`` (none when unknown), newest first."""
        if uid is None:
            return
        for pid in self._pids():
            with contextlib.suppress(OSError):
                if os.stat(f"{self.proc}/{pid}").st_uid == uid:
                    yield pid

    def _rescan(self) -> None:
        owners: dict[int, int] = {}
        for pid in self._pids():
            owners.update(self._socket_owners(pid))
        self._owners = owners
        self._scanned_at = time.monotonic()

    def _remember(self, pid: int) -> None:
        self._recent[pid] = None
        self._recent.move_to_end(pid)
        while len(self._recent) > RECENT_OWNERS:
            self._recent.popitem(last=False)

    def pid_of(
        self, inodes: list[int], uid: int | None = None, thorough: bool = False
    ) -> int | None:
        """The process holding one of ``inodes``.

        ``thorough`` (a held packet: its socket is open now) searches the recent
        owners, then the processes of ``uid`` newest first, before a full scan;
        otherwise a full scan runs at most every ``rescan_every_s``.
        """
        pid = next((self._owners[i] for i in inodes if i in self._owners), None)
        if pid is not None or not thorough:
            if pid is None and time.monotonic() - self._scanned_at >= self.rescan_every_s:
                self._rescan()
                pid = next((self._owners[i] for i in inodes if i in self._owners), None)
            return pid
        wanted = set(inodes)
        for candidate in itertools.chain(reversed(self._recent), self._owned_by(uid)):
            owners = self._socket_owners(candidate)
            found = wanted & owners.keys()
            if found:
                if len(self._owners) > 65536:
                    self._owners.clear()
                self._owners.update(owners)
                return candidate
        self._rescan()
        return next((self._owners[i] for i in inodes if i in self._owners), None)

    def attribute(
        self,
        protocol: str,
        local: str,
        lport: int | None,
        remote: str,
        rport: int | None,
        *,
        uid: int | None = None,
        gid: int | None = None,
        thorough: bool = False,
    ) -> Attribution:
        """Owner of ``local:lport -> remote:rport``; what the kernel knows when not found."""
        if lport is None or rport is None or protocol not in _TABLES:
            return Attribution(note=f"{protocol} has no port to look up", uid=uid, gid=gid)
        gone = "socket already closed when the flow was seen"
        try:
            facts = self.socket_diag(protocol, local, lport, remote, rport)
        except _Gone:
            # The kernel's own answer: /proc/net would say the same, only slower.
            return self._without_process(gone, uid, gid)
        cgroup_id = None
        if facts is not None:
            inodes, uid, cgroup_id = [facts.inode], facts.uid, facts.cgroup_id
        else:
            ipv6 = ":" in local
            found = socket_inodes(protocol, lport, self.proc, ipv6) or (
                [] if ipv6 else socket_inodes(protocol, lport, self.proc, True)
            )
            inodes = [inode for _addr, inode in found]
        if not inodes:
            return self._without_process(gone, uid, gid)
        pid = self.pid_of(inodes, uid, thorough)
        if pid is None:
            note = "socket owner not found (process exited or attribution rate-limited)"
            return self._without_process(note, uid, gid, cgroup_id)
        process, note = self._describe(pid)
        if process is None:
            return self._without_process(note, uid, gid, cgroup_id)
        self._remember(pid)
        return Attribution(process, "", uid, gid, process.cgroup, process.unit)

    def owner(
        self, protocol: str, local_port: int | None, ipv6: bool = False
    ) -> tuple[ProcessFacts | None, str]:
        """The owning process by local port alone, or None and the reason it is unknown."""
        if local_port is None or protocol not in _TABLES:
            return None, f"{protocol} has no port to look up"
        found = socket_inodes(protocol, local_port, self.proc, ipv6) or (
            [] if ipv6 else socket_inodes(protocol, local_port, self.proc, True)
        )
        inodes = [inode for _addr, inode in found]
        if not inodes:
            return None, "socket already closed when the flow was seen"
        pid = self.pid_of(inodes)
        if pid is None:
            return None, "socket owner not found (process exited or attribution rate-limited)"
        return self._describe(pid)

    def _without_process(
        self, note: str, uid: int | None, gid: int | None, cgroup_id: int | None = None
    ) -> Attribution:
        cgroup = self.cgroup_path(cgroup_id) if cgroup_id else ""
        return Attribution(None, note, uid, gid, cgroup, unit_of(cgroup))

    def cgroup_path(self, cgroup_id: int) -> str:
        """The cgroup v2 path whose directory inode is ``cgroup_id`` (the socket's cgroup)."""
        path = self._cgroups.get(cgroup_id)
        if path is None and time.monotonic() - self._cgroups_at >= CGROUP_MAP_EVERY_S:
            root = cgroup_root()
            found: dict[int, str] = {}
            for directory, _dirs, _files in os.walk(root):
                with contextlib.suppress(OSError):
                    found[os.stat(directory).st_ino] = "/" + os.path.relpath(directory, root).strip(
                        "."
                    )
            self._cgroups, self._cgroups_at = found, time.monotonic()
            path = found.get(cgroup_id)
        return path or ""

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

    def executable_sha256(self, pid: int) -> str:
        """SHA-256 of the file the process runs (cached by device, inode, size and mtime)."""
        path = f"{self.proc}/{pid}/exe"
        try:
            info = os.stat(path)
            key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
            if key not in self._hashes:
                digest = hashlib.sha256()
                with open(path, "rb") as binary:
                    for block in iter(lambda: binary.read(1 << 20), b""):
                        digest.update(block)
                if len(self._hashes) >= MAX_DESCRIBED:
                    self._hashes.clear()
                self._hashes[key] = digest.hexdigest()
            return self._hashes[key]
        except OSError:
            return ""


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
    cgroup = cgroup_of(pid, proc)
    return (
        ProcessFacts(
            pid=pid,
            name=name[:64],
            exe=exe[:512],
            cmdline=cmdline.strip()[:512],
            user=user_name(uid)[:64],
            cgroup=cgroup[:512],
            unit=unit_of(cgroup)[:64],
        ),
        "",
    )


@functools.lru_cache(maxsize=256)
def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
