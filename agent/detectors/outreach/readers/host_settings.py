"""Host settings that open a way out: proxy settings in files, forwarding, NAT, hotspots.

Both are cheap reads (a few small files, two sysctls, one ``nft list
ruleset``, the process names) that the source repeats on a slow timer and,
for forwarding, at once on a netconf or ruleset change;
``HostSettingsReader`` keeps what was already reported.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Final

import psutil

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


def default_paths() -> list[Path]:
    """PROXY_PATHS plus what PROXY_GLOBS match now (bounded)."""
    import glob

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
