"""The host fingerprint sent at enrollment: what stays the same when a workstation is re-imaged.

A re-imaged workstation must come back as the same host in the console, so the key must live
below the operating system:

1. the DMI product UUID (``/sys/class/dmi/id/product_uuid``, set by the firmware, readable by
   root only) when it is readable and not one of the placeholders cheap boards ship;
2. else the permanent MAC addresses of the physical network cards (``addr_assign_type`` 0 and
   a ``device`` link, so bridges, veths, VPN tunnels and randomised Wi-Fi addresses are left
   out), sorted;
3. plus the hostname, so two cloned virtual machines that share a firmware UUID but were given
   different names stay two hosts.

``/etc/machine-id`` is not used: it is made at installation, so a re-image changes it, and a
cloned image that was not reset shares it with every copy.

Only the SHA-256 of these leaves the host, never the UUID or the MACs themselves.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Final

#: Values firmware writes when nobody set a UUID; they identify a board model, not a machine.
_PLACEHOLDER_UUIDS: Final = frozenset({
    "00000000-0000-0000-0000-000000000000",
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
    "03000200-0400-0500-0006-000700080009",
    "00020003-0004-0005-0006-000700080009",
})
_NULL_MACS: Final = frozenset({"00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff"})
#: ``addr_assign_type`` of an address burnt into the card (NET_ADDR_PERM).
_PERMANENT: Final = "0"


def product_uuid(sys_root: Path = Path("/sys")) -> str | None:
    """The firmware's product UUID in lower case, or None when unreadable or a placeholder."""
    try:
        text = (sys_root / "class/dmi/id/product_uuid").read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    value = text.lower()
    if len(value) != 36 or value in _PLACEHOLDER_UUIDS:
        return None
    return value


def permanent_macs(sys_root: Path = Path("/sys")) -> list[str]:
    """The burnt-in MAC addresses of physical network cards, sorted."""
    found: set[str] = set()
    try:
        interfaces = list((sys_root / "class/net").iterdir())
    except OSError:
        return []
    for interface in interfaces:
        try:
            if not (interface / "device").exists():
                continue  # virtual: bridge, veth, tun, loopback
            if (interface / "addr_assign_type").read_text().strip() != _PERMANENT:
                continue
            mac = (interface / "address").read_text().strip().lower()
        except OSError:
            continue
        if len(mac) == 17 and mac not in _NULL_MACS:
            found.add(mac)
    return sorted(found)


def host_key(sys_root: Path = Path("/sys")) -> str | None:
    """``dmi:<uuid>`` or ``mac:<mac,...>``; None when the host offers neither."""
    uuid = product_uuid(sys_root)
    if uuid is not None:
        return f"dmi:{uuid}"
    macs = permanent_macs(sys_root)
    return f"mac:{','.join(macs)}" if macs else None


def host_fingerprint(hostname: str, sys_root: Path = Path("/sys")) -> str | None:
    """SHA-256 (hex) of the host key and the hostname; None when no host key is found.

    Without a host key there is nothing that survives a re-image, and the hostname alone is
    too easy to repeat by mistake, so such a host enrolls without a fingerprint and never
    supersedes another.
    """
    key = host_key(sys_root)
    if key is None:
        return None
    return hashlib.sha256(f"courtguard-host/1\n{key}\n{hostname.lower()}".encode()).hexdigest()
