"""Which Linux capabilities this process holds, so detectors can declare what they need.

The effective set is read from ``CapEff`` in ``/proc/self/status``; on other
platforms (or when ``/proc`` is missing) the set is empty and every detector
that needs a capability reports itself degraded.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Final

#: Bit numbers from linux/capability.h (stable kernel ABI).
CAPABILITY_BITS: Final[dict[str, int]] = {
    "CAP_CHOWN": 0,
    "CAP_DAC_OVERRIDE": 1,
    "CAP_DAC_READ_SEARCH": 2,
    "CAP_FOWNER": 3,
    "CAP_FSETID": 4,
    "CAP_KILL": 5,
    "CAP_SETGID": 6,
    "CAP_SETUID": 7,
    "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9,
    "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12,
    "CAP_NET_RAW": 13,
    "CAP_IPC_LOCK": 14,
    "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16,
    "CAP_SYS_RAWIO": 17,
    "CAP_SYS_CHROOT": 18,
    "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20,
    "CAP_SYS_ADMIN": 21,
    "CAP_SYS_BOOT": 22,
    "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24,
    "CAP_SYS_TIME": 25,
    "CAP_SYS_TTY_CONFIG": 26,
    "CAP_MKNOD": 27,
    "CAP_LEASE": 28,
    "CAP_AUDIT_WRITE": 29,
    "CAP_AUDIT_CONTROL": 30,
    "CAP_SETFCAP": 31,
    "CAP_MAC_OVERRIDE": 32,
    "CAP_MAC_ADMIN": 33,
    "CAP_SYSLOG": 34,
    "CAP_WAKE_ALARM": 35,
    "CAP_BLOCK_SUSPEND": 36,
    "CAP_AUDIT_READ": 37,
    "CAP_PERFMON": 38,
    "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}

STATUS_PATH: Final = Path("/proc/self/status")


def parse_capeff(status_text: str) -> frozenset[str]:
    """The capability names set in the ``CapEff`` line of a ``/proc/<pid>/status`` text."""
    for line in status_text.splitlines():
        if line.startswith("CapEff:"):
            mask = int(line.split(":", 1)[1].strip(), 16)
            return frozenset(name for name, bit in CAPABILITY_BITS.items() if mask >> bit & 1)
    return frozenset()


def effective(status_path: Path = STATUS_PATH) -> frozenset[str]:
    """The capabilities this process can use now; empty when they cannot be read."""
    try:
        return parse_capeff(status_path.read_text(encoding="ascii", errors="replace"))
    except OSError:
        return frozenset()


def missing(required: Iterable[str], held: frozenset[str]) -> list[str]:
    """Required capability names not held, sorted; unknown names count as missing."""
    return sorted(name for name in required if name not in held)
