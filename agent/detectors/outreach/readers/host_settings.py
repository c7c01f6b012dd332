"""Host settings that open a way out: proxy settings in files, forwarding, NAT, hotspots.

Both are cheap reads (a few small files, the forwarding sysctls, one ``nft
list ruleset``, the process names). The proxy files are read again when
inotify (``ProxyWatch``, through watchdog) says something changed where they
live; sharing on a slow timer and, for forwarding, at once on a netconf or
ruleset change. ``HostSettingsReader`` keeps what was already reported.
"""

from __future__ import annotations

import asyncio
import glob
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

import psutil
import structlog

from agent.detectors.outreach.observations import ProxyObservation, SharingObservation
from agent.detectors.outreach.readers.kernel_filter import TABLE

#: Files and directories read for proxy settings. Desktop settings: system-wide dconf
#: keyfiles (GNOME, UKUI and DDE read org.gnome.system.proxy) and each user's KDE
#: kioslaverc; per-user dconf databases (binary GVDB) are not read.
PROXY_PATHS: Final = (
    Path("/etc/environment"),
    Path("/etc/profile.d"),
    Path("/etc/apt/apt.conf"),
    Path("/etc/apt/apt.conf.d"),
    Path("/etc/wgetrc"),
)
PROXY_GLOBS: Final = (
    "/etc/dconf/db/*.d/*",
    "/home/*/.profile",
    "/home/*/.bashrc",
    "/home/*/.config/kioslaverc",
    "/root/.profile",
    "/root/.bashrc",
)
MAX_GLOBBED: Final = 400
_ENV_PROXY: Final = re.compile(
    r"^\s*(?:export\s+)?((?:https?|ftp|all|socks)_proxy)\s*=\s*(\S+)", re.IGNORECASE
)
_APT_PROXY: Final = re.compile(r'^\s*(Acquire::\w+::Proxy)\s+"([^"]+)"', re.IGNORECASE)
_WGET_PROXY: Final = re.compile(r"^\s*((?:https?|ftp)_proxy)\s*=\s*(\S+)", re.IGNORECASE)
_KDE_PROXY: Final = re.compile(r"^\s*((?:http|https|ftp|socks)Proxy)\s*=\s*(\S+)")
_DCONF_SECTION: Final = re.compile(r"^\s*\[(system/proxy/(?:http|https|ftp|socks))\]")
_DCONF_HOST: Final = re.compile(r"^\s*host\s*=\s*'([^']*)'")
MAX_PROXY_FILE: Final = 256 * 1024
HOTSPOT_PROCESSES: Final = frozenset({"hostapd", "create_ap"})


log = structlog.get_logger("courtguard.outreach")

#: Directories where a proxy file can appear (a new user, a new dconf database).
PROXY_PARENT_GLOBS: Final = ("/etc/dconf/db", "/etc/dconf/db/*.d", "/home", "/home/*",
                             "/home/*/.config", "/root")


def default_paths() -> list[Path]:
    """PROXY_PATHS plus what PROXY_GLOBS match now (bounded)."""
    globbed = [Path(p) for pattern in PROXY_GLOBS for p in sorted(glob.glob(pattern))]
    return [*PROXY_PATHS, *globbed[:MAX_GLOBBED]]


def _files(paths: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir() if p.is_file())[:200])
        elif path.is_file():
            out.append(path)
    return out


def proxy_settings(paths: Iterable[Path] | None = None) -> list[ProxyObservation]:
    """Every proxy setting with a value in the given files (comments ignored)."""
    found = []
    for path in _files(default_paths() if paths is None else paths):
        try:
            if path.stat().st_size > MAX_PROXY_FILE:
                continue
            text = path.read_text(errors="replace")
        except OSError:
            continue
        section = ""
        for line in text.splitlines():
            if line.lstrip().startswith(("#", "//")):
                continue
            if line.lstrip().startswith("["):
                header = _DCONF_SECTION.match(line)
                section = header.group(1) if header else ""
                continue
            host = _DCONF_HOST.match(line) if section else None
            match = (
                _APT_PROXY.match(line)
                or _ENV_PROXY.match(line)
                or _WGET_PROXY.match(line)
                or _KDE_PROXY.match(line)
            )
            if host is not None:
                variable, value = f"{section}/host", host.group(1)
            elif match is not None:
                variable, value = match.group(1), match.group(2)
            else:
                continue
            value = value.strip().strip("'\";")
            if value and value.upper() not in {"DIRECT", "FALSE"}:
                found.append(
                    ProxyObservation(
                        origin=str(path)[:512], variable=variable[:64], value=value[:512]
                    )
                )
    return found


def signature(paths: Iterable[Path] | None = None) -> tuple[tuple[str, int, int], ...]:
    """Cheap change detector: (path, mtime, size) of every proxy file."""
    sig = []
    for path in _files(default_paths() if paths is None else paths):
        try:
            st = path.stat()
        except OSError:
            continue
        sig.append((str(path), st.st_mtime_ns, st.st_size))
    return tuple(sig)


def watched_paths() -> list[Path]:
    """The directories ``ProxyWatch`` watches: every one a proxy file lives or may appear in.

    A directory's watch sees its files created, written, replaced (an
    editor's rename) and deleted, through any path that goes through it.
    """
    directories = {path if path.is_dir() else path.parent for path in PROXY_PATHS}
    directories.update(
        Path(p) for pattern in PROXY_PARENT_GLOBS for p in sorted(glob.glob(pattern))[:MAX_GLOBBED]
    )
    return sorted(p for p in directories if p.is_dir())


class ProxyWatch:
    """inotify on ``watched_paths`` (watchdog): ``changed`` is called, from watchdog's thread,
    after any write, creation, deletion or rename there; ``replan`` (after each read)
    watches new homes and dconf databases too.

    Only changes are asked of the kernel (no open, read or close-without-write
    events: ``/etc`` is read all the time). ``start`` returns False where
    inotify is unavailable: the caller reads the files on a timer instead.
    """

    def __init__(self, changed: Callable[[], None]) -> None:
        self._changed = changed
        self._observer: Any = None
        self._lock = threading.Lock()
        self._watched: list[Path] = []

    def start(self) -> bool:
        try:
            from watchdog.observers.inotify import InotifyObserver
        except ImportError:  # not Linux
            return False
        with self._lock:
            self._observer = InotifyObserver()
            self._schedule()
            try:
                self._observer.start()
            except OSError as exc:
                log.warning("outreach: cannot watch proxy files", error=str(exc))
                self._observer = None
                return False
        return True

    def _schedule(self) -> None:
        from watchdog import events

        changed = self._changed

        class Handler(events.FileSystemEventHandler):
            def on_any_event(self, event: events.FileSystemEvent) -> None:
                changed()

        handler = Handler()
        kinds: list[type[events.FileSystemEvent]] = [
            events.FileCreatedEvent,
            events.FileModifiedEvent,
            events.FileDeletedEvent,
            events.FileMovedEvent,
            events.FileClosedEvent,
            events.DirCreatedEvent,
            events.DirDeletedEvent,
            events.DirMovedEvent,
        ]
        self._watched = watched_paths()
        for path in self._watched:
            try:
                self._observer.schedule(handler, str(path), recursive=False, event_filter=kinds)
            except OSError as exc:
                log.warning("outreach: cannot watch a proxy path", path=str(path), error=str(exc))

    def replan(self) -> None:
        """Watch again what ``watched_paths`` names now (a new home or dconf database)."""
        with self._lock:
            if self._observer is None or watched_paths() == self._watched:
                return
            self._observer.unschedule_all()
            self._schedule()

    def stop(self) -> None:
        with self._lock:
            observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(timeout=5)


def _sysctl(path: str) -> bool:
    try:
        return Path(path).read_text().strip() not in {"", "0"}
    except OSError:
        return False


def forwarding_interfaces(conf: Path) -> list[str]:
    """Interfaces under ``conf`` (``/proc/sys/net/ipv4/conf``) whose own forwarding is on.

    The kernel routes a packet that arrives on an interface whose own
    ``forwarding`` is 1 even while the global switch is off, so two such
    interfaces share one network with the other. ``all`` and ``default`` are
    the global switch and the template for new interfaces; ``lo`` forwards
    nothing.
    """
    try:
        names = sorted(p.name for p in conf.iterdir())
    except OSError:
        return []
    return [
        name
        for name in names
        if name not in {"all", "default", "lo"} and _sysctl(str(conf / name / "forwarding"))
    ][:64]


def _masquerading() -> bool:
    nft = shutil.which("nft") or ("/usr/sbin/nft" if Path("/usr/sbin/nft").exists() else None)
    if nft is None:
        return False
    try:
        result = subprocess.run(  # noqa: S603 (fixed binary and arguments)
            [nft, "list", "ruleset"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    table = ""
    for line in result.stdout.splitlines():
        words = line.split()
        if words[:1] == ["table"]:
            table = words[-2] if len(words) >= 3 else ""
        if table != TABLE and ("masquerade" in words or "snat" in words):
            return True
    return False


def sharing_state() -> SharingObservation:
    hotspot = sorted(
        {
            name
            for p in psutil.process_iter(["name"])
            if (name := p.info.get("name") or "") in HOTSPOT_PROCESSES
        }
    )
    return SharingObservation(
        ipv4_forwarding=_sysctl("/proc/sys/net/ipv4/ip_forward"),
        ipv6_forwarding=_sysctl("/proc/sys/net/ipv6/conf/all/forwarding"),
        ipv4_forwarding_interfaces=forwarding_interfaces(Path("/proc/sys/net/ipv4/conf")),
        ipv6_forwarding_interfaces=forwarding_interfaces(Path("/proc/sys/net/ipv6/conf")),
        masquerade=_masquerading(),
        hotspot=hotspot[:16],
    )


class HostSettingsReader:
    """What changed since the last read: proxy settings not seen before, a new sharing state.

    The reads run in threads (``nft list ruleset`` and the process list are
    not instant); the proxy files are read again only when their
    (path, mtime, size) signature changes.
    """

    def __init__(self) -> None:
        self._proxy_signature: tuple[tuple[str, int, int], ...] | None = None
        self._proxies_seen: set[tuple[str, str, str]] = set()
        self._sharing: SharingObservation | None = None

    async def new_proxies(self) -> list[ProxyObservation]:
        current = await asyncio.to_thread(signature)
        if current == self._proxy_signature:
            return []
        self._proxy_signature = current
        found = []
        for proxy in await asyncio.to_thread(proxy_settings):
            key = (proxy.origin, proxy.variable, proxy.value)
            if key not in self._proxies_seen:
                self._proxies_seen.add(key)
                found.append(proxy)
        return found

    async def new_sharing(self) -> SharingObservation | None:
        state = await asyncio.to_thread(sharing_state)
        if state == self._sharing:
            return None
        self._sharing = state
        return state
