"""The accounts sources that read host state: sessions, processes, groups, mounts.

Each is a plain object with ``run(emit, stop)`` that blocks in its own
thread (see ``accounts.source.AccountsSource``) and a ``poll_once(emit)`` the tests
drive directly. They ask the shared ``Directory`` who is a contractor, so
only contractor processes are looked at closely.
"""

from __future__ import annotations

import contextlib
import grp
import hashlib
import json
import os
import pwd
import select
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

import psutil
import structlog

from agent.detectors.accounts.observations import (
    GroupState,
    MountObserved,
    ProcessStarted,
    SessionObserved,
)
from agent.detectors.accounts.policy import AccountsPolicy
from agent.file_stamps import Stamp, file_stamp

log = structlog.get_logger("courtguard.accounts.host")
Emit = Callable[[Any], None]
MAX_CMDLINE: Final = 4096


def _now() -> datetime:
    return datetime.now(UTC)


def groups_of(account: str) -> list[str] | None:
    """Every group ``account`` is in, primary included, through NSS (files, SSSD, LDAP)."""
    try:
        entry = pwd.getpwnam(account)
    except KeyError:
        return None
    names = []
    for gid in os.getgrouplist(account, entry.pw_gid):
        try:
            names.append(grp.getgrgid(gid).gr_name)
        except KeyError:
            names.append(str(gid))
    return sorted(set(names))


@dataclass
class Directory:
    """Who the contractors are on this host, per the current policy; shared by the sources."""

    policy: AccountsPolicy | None = None
    _names_by_uid: dict[int, str | None] = field(default_factory=dict)
    _by_name: dict[str, bool] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def update(self, policy: AccountsPolicy | None) -> None:
        with self.lock:
            self.policy = policy
            self._names_by_uid.clear()
            self._by_name.clear()

    def forget(self) -> None:
        with self.lock:
            self._names_by_uid.clear()
            self._by_name.clear()

    def is_contractor(self, account: str) -> bool:
        """Whether the policy selects ``account`` (cached until forget; unknown users too)."""
        with self.lock:
            known = self._by_name.get(account)
            policy = self.policy
        if known is not None:
            return known
        groups = frozenset(groups_of(account) or ()) if policy is not None else frozenset()
        selected = policy is not None and policy.resolve(account, groups) is not None
        with self.lock:
            if len(self._by_name) < 100_000:
                self._by_name[account] = selected
        return selected

    def names_contractor(self, actor: str | None, target: str | None) -> bool:
        """Whether an actor or target is a contractor (or an actor known only by uid)."""
        for name in (actor, target):
            if name and (name.startswith("#") or self.is_contractor(name)):
                return True
        return False

    def contractor_by_uid(self, uid: int) -> str | None:
        """The account name when ``uid`` is a contractor, else None (cached until forget)."""
        with self.lock:
            if uid in self._names_by_uid:
                return self._names_by_uid[uid]
            policy = self.policy
        name: str | None = None
        if policy is not None:
            try:
                account = pwd.getpwuid(uid).pw_name
            except KeyError:
                account = None
            if account is not None:
                groups = frozenset(groups_of(account) or ())
                name = account if policy.resolve(account, groups) is not None else None
        with self.lock:
            self._names_by_uid[uid] = name
        return name

    def candidates(self) -> list[str]:
        """Accounts that may be contractors: explicit names, pattern matches, group members."""
        policy = self.policy
        if policy is None:
            return []
        found: set[str] = {e.name for e in policy.accounts if e.name}
        patterns = [e for e in policy.accounts if e.pattern]
        if patterns:
            found.update(
                u.pw_name
                for u in pwd.getpwall()
                if any(e.selects(u.pw_name, frozenset()) for e in patterns)
            )
        for group in policy.selector_groups():
            try:
                entry = grp.getgrnam(group)
            except KeyError:
                continue
            found.update(entry.gr_mem)
            found.update(u.pw_name for u in pwd.getpwall() if u.pw_gid == entry.gr_gid)
        return sorted(found)


#: What changes when a session opens or closes: logind's session directory and utmp.
SESSION_MARKERS: Final = (Path("/run/systemd/sessions"), Path("/var/run/utmp"))


class SessionSource:
    """Sessions from systemd-logind (``loginctl list-sessions -o json``), else utmp.

    Sessions are listed again only when logind's session directory or utmp
    changed since the last listing (``markers``, watched with inotify), so an
    idle host neither runs ``loginctl`` nor wakes at all; where neither exists,
    every ``poll_s`` lists them.
    """

    #: Listed again this often even when inotify reported nothing.
    SAFETY_S: Final = 300.0

    def __init__(
        self, host: str, poll_s: float, markers: tuple[Path, ...] = SESSION_MARKERS
    ) -> None:
        self.host = host
        self.poll_s = poll_s
        self.markers = markers
        self._listed_at: Stamp | None = None
        self.listings = 0
        self.known: dict[str, dict[str, Any]] | None = None
        self.wake = threading.Event()
        self._stopping = False
        self.loginctl = shutil.which("loginctl")
        #: Decided by the first listing, in the reader's thread: loginctl never runs on the loop.
        self.mode: Literal["logind", "utmp"] = "logind" if self.loginctl else "utmp"

    def _logind_sessions(self) -> list[dict[str, Any]] | None:
        if self.loginctl is None:
            return None
        try:
            done = subprocess.run(  # noqa: S603 (fixed argv)
                [self.loginctl, "list-sessions", "-o", "json", "--no-pager"],
                capture_output=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        if done.returncode != 0:
            return None
        return parse_loginctl_json(done.stdout.decode("utf-8", "replace"))

    def _utmp_sessions(self) -> list[dict[str, Any]]:
        return [
            {
                "session": f"utmp:{u.terminal or ''}:{u.pid or ''}",
                "user": u.name,
                "tty": u.terminal or "",
                "remote_host": u.host or "",
            }
            for u in psutil.users()
        ]

    def snapshot(self) -> dict[str, dict[str, Any]]:
        sessions = self._logind_sessions() if self.mode == "logind" else None
        if sessions is None and self.known is None:
            self.mode = "utmp"  # no logind here: utmp from now on
        if sessions is None:
            sessions = self._utmp_sessions()
        return {str(s["session"]): s for s in sessions if s.get("user")}

    def poll_once(self, emit: Emit) -> None:
        stamp = file_stamp(*self.markers)  # before the listing: a change after it is seen next time
        if self.known is not None and stamp == self._listed_at and any(stamp):
            return
        self._listed_at = stamp
        self.listings += 1
        current = self.snapshot()
        now = _now()
        first = self.known is None
        known = self.known or {}
        for key, session in current.items():
            if key not in known:
                emit(
                    SessionObserved(
                        time=now,
                        host=self.host,
                        action="present" if first else "open",
                        account=str(session["user"]),
                        session_id=key,
                        tty=str(session.get("tty") or ""),
                        remote_host=str(session.get("remote_host") or ""),
                        source=self.mode,
                        service=str(session.get("class") or ""),
                    )
                )
        for key, session in known.items():
            if key not in current:
                emit(
                    SessionObserved(
                        time=now,
                        host=self.host,
                        action="close",
                        account=str(session["user"]),
                        session_id=key,
                        source=self.mode,
                    )
                )
        self.known = current

    def run(self, emit: Emit, stop: threading.Event) -> None:
        """List at start, then when inotify reports a change to a marker (every ``poll_s``
        where no marker can be watched), and every ``SAFETY_S`` regardless."""
        from agent.file_watch import watch_files

        present = [m for m in self.markers if m.exists()]
        unwatch = watch_files(present, self.wake.set) if present else None
        every = self.SAFETY_S if unwatch is not None else self.poll_s
        try:
            while not stop.is_set() and not self._stopping:
                self.wake.clear()
                self.poll_once(emit)
                if self.wake.wait(every) and not self._stopping:
                    stop.wait(min(self.poll_s, 0.2))  # let a burst of writes settle
        finally:
            if unwatch is not None:
                unwatch()

    def stop(self) -> None:
        """End ``run`` now (it may be waiting for a change)."""
        self._stopping = True
        self.wake.set()


def parse_loginctl_json(text: str) -> list[dict[str, Any]] | None:
    """``loginctl list-sessions -o json`` of systemd 252..257; None when it is not that."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, list):
        return None
    return [
        {
            "session": str(s.get("session")),
            "user": str(s.get("user")),
            "tty": s.get("tty") or "",
            "seat": s.get("seat") or "",
            "class": s.get("class") or "",
        }
        for s in data
        if isinstance(s, dict) and s.get("session") is not None and s.get("user")
    ]


class ProcessSource:
    """New processes of contractor accounts: only new programs, only contractor uids.

    Where the kernel's process connector can be listened to (root in the
    initial namespaces), each exec and uid change wakes the reader
    (``mode == "events"``): nothing runs while no process starts. Elsewhere,
    or when the socket cannot be opened, ``psutil.pids()`` is compared every
    ``poll_s`` (``mode == "scan"``, with the reason in ``fallback_reason``).
    Either way one scan at start reports the contractor processes already
    running, and an overrun of the event socket is caught up by a scan.
    """

    #: A uid change is looked at this much later, unless the process execs first.
    UID_SETTLE_S: Final = 1.0
    #: After a wake, events are let gather this long: at most a few wakes a second.
    BATCH_S: Final = 0.2

    def __init__(
        self, host: str, directory: Directory, poll_s: float, hash_max: int,
        events: bool = True,
    ) -> None:
        self.host = host
        self.directory = directory
        self.poll_s = poll_s
        self.hash_max = hash_max
        self.seen: set[int] = set()
        self._hashes: dict[tuple[str, int, int], str] = {}
        self._reported: dict[int, str] = {}  # pid -> exe, since its last exec (events mode)
        self._uid_changed: dict[int, float] = {}  # pid -> when to look at it (monotonic)
        self.connector: Any = None
        self.fallback_reason: str | None = "process events switched off in settings"
        if events:
            self.fallback_reason = None
            try:
                from agent.detectors.accounts.readers.proc_events import ProcConnector

                self.connector = ProcConnector()
            except OSError as exc:
                self.fallback_reason = (
                    f"no process connector ({exc.strerror or exc}); scanning every {poll_s:g} s"
                )
        # ``stop`` writes here: the wait for a process event has no timeout to poll a flag with.
        self._stop_r, self._stop_w = os.pipe()

    @property
    def mode(self) -> Literal["events", "scan"]:
        return "events" if self.connector is not None else "scan"

    def poll_once(self, emit: Emit) -> None:
        pids = set(psutil.pids())
        new = pids - self.seen
        self.seen = pids
        for pid in sorted(new):
            self._look_at(pid, real_uid(pid), emit)

    def on_exec(self, pid: int, emit: Emit) -> None:
        """``pid`` ran a new program: looked at again, whatever was reported before."""
        self._reported.pop(pid, None)
        self._uid_changed.pop(pid, None)
        self._look_at(pid, real_uid(pid), emit)

    def on_uid(self, pid: int, now: float) -> None:
        """``pid`` changed its uid: looked at ``UID_SETTLE_S`` later unless it runs a program
        first (``su`` and ``sudo -u`` set the uid in a child that execs at once: the program is
        what counts, not the forked copy of su)."""
        if len(self._uid_changed) < 65_536:
            self._uid_changed.setdefault(pid, now + self.UID_SETTLE_S)

    def settle_uids(self, now: float, emit: Emit) -> float | None:
        """Look at the uid changes whose wait ran out; seconds until the next is due."""
        for pid, due in list(self._uid_changed.items()):
            if due <= now:
                del self._uid_changed[pid]
                if pid not in self._reported:
                    self._look_at(pid, real_uid(pid), emit)
        return min(self._uid_changed.values()) - now if self._uid_changed else None

    def _look_at(self, pid: int, uid: int | None, emit: Emit) -> None:
        if uid is None:
            return
        account = self.directory.contractor_by_uid(uid)
        if account is None:
            return
        try:
            process = psutil.Process(pid)
            with process.oneshot():
                name = process.name()
                exe = _quiet(process.exe)
                cmdline = " ".join(_quiet(process.cmdline) or [])[:MAX_CMDLINE]
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return
        if len(self._reported) > 65_536:
            self._reported.clear()
        self._reported[pid] = exe or ""
        emit(
            ProcessStarted(
                time=_now(),
                host=self.host,
                pid=pid,
                account=account,
                name=name[:256],
                exe=(exe or "")[:4096],
                cmdline=cmdline,
                sha256=self._hash(exe or ""),
            )
        )

    def _hash(self, path: str) -> str:
        try:
            st = os.stat(path)
        except OSError:
            return ""
        if st.st_size > self.hash_max:
            return ""
        key = (path, st.st_size, st.st_mtime_ns)
        if key not in self._hashes:
            digest = hashlib.sha256()
            try:
                with open(path, "rb") as handle:
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(block)
            except OSError:
                return ""
            if len(self._hashes) > 4096:
                self._hashes.clear()
            self._hashes[key] = digest.hexdigest()
        return self._hashes[key]

    def run(self, emit: Emit, stop: threading.Event) -> None:
        self.poll_once(emit)
        if self.connector is None:
            while not stop.wait(self.poll_s):
                self.poll_once(emit)
            return
        connector = self.connector
        try:
            with open(self._stop_r, "rb", buffering=0) as stopped:
                poller = select.poll()
                poller.register(connector.fileno(), select.POLLIN)
                poller.register(stopped.fileno(), select.POLLIN)
                wait_ms: int | None = None  # no timer unless a uid change waits
                while not stop.is_set():
                    ready = {fd for fd, _ in poller.poll(wait_ms)}
                    if stopped.fileno() in ready:
                        break
                    overruns = connector.overruns
                    for event in connector.read():
                        if event.what == "exec":
                            self.on_exec(event.pid, emit)
                        else:
                            self.on_uid(event.pid, time.monotonic())
                    due = self.settle_uids(time.monotonic(), emit)
                    wait_ms = None if due is None else max(1, int(due * 1000) + 1)
                    # A host starting programs without pause (a build) would wake the reader
                    # for each: the kernel queues them meanwhile, and they are read together.
                    if select.select([stopped], [], [], self.BATCH_S)[0]:
                        break
                    if connector.overruns != overruns:
                        log.warning("process events overran; scanning for what was missed")
                        self.poll_once(emit)
        finally:
            connector.close()

    def stop(self) -> None:
        """End ``run`` now (it may be waiting for a process event)."""
        with contextlib.suppress(OSError):  # stopped twice: the pipe is already closed
            os.write(self._stop_w, b"x")
            os.close(self._stop_w)


def real_uid(pid: int) -> int | None:
    """The real uid from ``/proc/<pid>/status`` (None once the process is gone).

    One read, where ``psutil.Process(pid).uids()`` makes two: on a busy host most
    new processes are not a contractor's and are looked at for this alone.
    """
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"Uid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _quiet(getter: Callable[[], Any]) -> Any:
    try:
        return getter()
    except (psutil.AccessDenied, psutil.ZombieProcess, OSError):
        return None


class GroupSource:
    """Each contractor's groups via NSS: at start, when /etc/group changes, and on a timer.

    inotify (the process's shared watch, ``agent.file_watch``) says when
    /etc/group changed; only where it cannot be had is the file's stamp
    compared each second. Directory services (SSSD, LDAP) change no file:
    ``recheck_s`` covers them.
    """

    GROUP_FILE: Final = Path("/etc/group")
    #: A tool rewriting /etc/group touches it and its companions in a burst: read once after.
    SETTLE_S: Final = 0.2

    def __init__(self, host: str, directory: Directory, recheck_s: float) -> None:
        self.host = host
        self.directory = directory
        self.recheck_s = recheck_s
        self._stamp: Stamp | None = None
        self.wake = threading.Event()
        self.watched = False
        self._stopping = False

    def poll_once(self, emit: Emit) -> None:
        self.directory.forget()
        now = _now()
        for account in self.directory.candidates():
            groups = groups_of(account)
            if groups is not None:
                emit(GroupState(time=now, host=self.host, account=account, groups=groups))

    def run(self, emit: Emit, stop: threading.Event) -> None:
        from agent.file_watch import watch_files

        unwatch = watch_files([self.GROUP_FILE], self.wake.set)
        self.watched = unwatch is not None
        self._stamp = file_stamp(self.GROUP_FILE)
        self.poll_once(emit)
        every = self.recheck_s if self.watched else min(1.0, self.recheck_s)
        last = time.monotonic()
        try:
            while not stop.is_set() and not self._stopping:
                woken = self.wake.wait(every)
                if stop.is_set() or self._stopping:
                    break
                if woken:
                    stop.wait(self.SETTLE_S)
                stamp = file_stamp(self.GROUP_FILE)
                due = time.monotonic() - last >= self.recheck_s
                if woken or stamp != self._stamp or due:
                    self.wake.clear()
                    self._stamp, last = stamp, time.monotonic()
                    self.poll_once(emit)
        finally:
            if unwatch is not None:
                unwatch()

    def stop(self) -> None:
        """End ``run`` now (it may be waiting for a change)."""
        self._stopping = True
        self.wake.set()


class MountSource:
    """Mounts from /proc/self/mountinfo, woken by POLLPRI on /proc/self/mounts (no polling)."""

    def __init__(
        self,
        host: str,
        mountinfo: Path = Path("/proc/self/mountinfo"),
        mounts: Path = Path("/proc/self/mounts"),
    ) -> None:
        self.host = host
        self.mountinfo = mountinfo
        self.mounts = mounts
        self.known: dict[str, dict[str, str]] | None = None
        # ``stop`` writes here: the wait for a mount change has no timeout to poll a flag with.
        self._stop_r, self._stop_w = os.pipe()

    def snapshot(self) -> dict[str, dict[str, str]]:
        try:
            text = self.mountinfo.read_text()
        except OSError:
            return {}
        return parse_mountinfo(text)

    def poll_once(self, emit: Emit) -> None:
        current = self.snapshot()
        if self.known is not None:
            for key, mount in current.items():
                if key not in self.known:
                    emit(self._observation(mount, "mounted"))
            for key, mount in self.known.items():
                if key not in current:
                    emit(self._observation(mount, "unmounted"))
        self.known = current

    def _observation(self, mount: dict[str, str], action: str) -> MountObserved:
        device = mount["source"]
        ids = usb_identity(device)
        return MountObserved.model_validate(
            {
                "time": _now(),
                "host": self.host,
                "action": action,
                "device": device[:256],
                "mountpoint": mount["mountpoint"][:4096],
                "fstype": mount["fstype"][:256],
                "removable": is_removable(device),
                "source": "mountinfo",
                **ids,
            }
        )

    def run(self, emit: Emit, stop: threading.Event) -> None:
        """Report mount changes until ``stop`` is set and ``stop()`` called (no timer)."""
        self.poll_once(emit)
        with open(self.mounts, "rb") as handle, open(self._stop_r, "rb", buffering=0) as stopped:
            poller = select.poll()
            poller.register(handle.fileno(), select.POLLPRI | select.POLLERR)
            poller.register(stopped.fileno(), select.POLLIN)
            while not stop.is_set():
                ready = {fd for fd, _ in poller.poll()}
                if stopped.fileno() in ready:
                    break
                if handle.fileno() in ready:
                    handle.seek(0)
                    handle.read()
                    self.poll_once(emit)

    def stop(self) -> None:
        """End ``run`` now (it may be waiting for a mount change)."""
        with contextlib.suppress(OSError):  # stopped twice: the pipe is already closed
            os.write(self._stop_w, b"x")
            os.close(self._stop_w)


def parse_mountinfo(text: str) -> dict[str, dict[str, str]]:
    """mount id -> source, mountpoint, fstype (proc(5) mountinfo format)."""
    mounts: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 2:
            continue
        mountpoint = fields[4].encode().decode("unicode_escape", "replace")
        mounts[fields[0]] = {"mountpoint": mountpoint, "fstype": tail[0], "source": tail[1]}
    return mounts


def _sys_block(device: str) -> Path | None:
    if not device.startswith("/dev/"):
        return None
    path = Path("/sys/class/block") / Path(device).name
    return path if path.exists() else None


def is_removable(device: str) -> bool:
    """A block device that is removable or hangs off USB (per sysfs)."""
    node = _sys_block(device)
    if node is None:
        return False
    disk = node if (node / "removable").exists() else node.parent
    try:
        if (disk / "removable").read_text().strip() == "1":
            return True
    except OSError:
        pass
    return "/usb" in str(node.resolve())


def usb_identity(device: str) -> dict[str, str]:
    """vendor_id, product_id, serial of the USB device behind a block device, from sysfs."""
    node = _sys_block(device)
    if node is None:
        return {}
    current = node.resolve()
    for parent in [current, *current.parents]:
        if (parent / "idVendor").exists():

            def read(name: str, where: Path = parent) -> str:
                try:
                    return (where / name).read_text().strip()[:256]
                except OSError:
                    return ""

            return {
                "vendor_id": read("idVendor"),
                "product_id": read("idProduct"),
                "serial": read("serial"),
            }
    return {}
