"""A unit's ``SystemCallFilter=`` applied to a process without systemd, through libseccomp.

systemd cannot run units on every test machine (a container's PID 1 is not
systemd), but the filter it would install can be: the allow list is the
unit's ``SystemCallFilter=`` groups, expanded by ``systemd-analyze
syscall-filter`` exactly as systemd expands them, minus the ``~`` lines; any
other system call fails with the unit's ``SystemCallErrorNumber=``, as under
systemd. ``NoNewPrivileges`` is set first, as the unit does.

    python -m tests.syscall_filter UNIT_FILE -- PROGRAM ARGS...

applies the filter and execs PROGRAM (children inherit it, as under systemd).
"""

from __future__ import annotations

import ctypes
import errno
import os
import subprocess
import sys
from pathlib import Path

PR_SET_NO_NEW_PRIVS = 38
SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_ACT_ERRNO = 0x00050000


def groups() -> dict[str, list[str]]:
    """Every ``@group`` systemd knows, with its members (system calls and nested groups)."""
    text = subprocess.run(["systemd-analyze", "syscall-filter"], capture_output=True, text=True,
                          check=True, timeout=60).stdout
    table: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("@"):
            current = table.setdefault(line.strip(), [])
        elif line.startswith(" ") and current is not None:
            entry = line.strip()
            if entry and not entry.startswith("#"):
                current.append(entry)
        elif not line.strip():
            current = None
    return table


def expand(entries: list[str], table: dict[str, list[str]]) -> set[str]:
    out: set[str] = set()
    for entry in entries:
        out |= expand(table[entry], table) if entry.startswith("@") else {entry}
    return out


def unit_filter(unit: Path) -> tuple[set[str], int]:
    """The system calls the unit allows, and the errno the others fail with."""
    allowed: list[str] = []
    denied: list[str] = []
    error = errno.EPERM
    for line in unit.read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition("=")
        if key == "SystemCallFilter":
            if value.startswith("~"):
                denied += value[1:].split()
            else:
                allowed += value.split()
        elif key == "SystemCallErrorNumber":
            error = getattr(errno, value.strip())
    if not allowed:
        raise ValueError(f"{unit} has no SystemCallFilter allow list")
    table = groups()
    return expand(allowed, table) - expand(denied, table), error


def apply(allowed: set[str], error: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    seccomp = ctypes.CDLL("libseccomp.so.2")
    seccomp.seccomp_init.restype = ctypes.c_void_p
    seccomp.seccomp_init.argtypes = [ctypes.c_uint32]
    seccomp.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    seccomp.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                         ctypes.c_uint]
    seccomp.seccomp_load.argtypes = [ctypes.c_void_p]
    context = seccomp.seccomp_init(SCMP_ACT_ERRNO | error)
    if not context:
        raise OSError("seccomp_init failed")
    for name in sorted(allowed):
        number = seccomp.seccomp_syscall_resolve_name(name.encode())
        if number < 0:
            continue  # not a system call on this architecture
        if seccomp.seccomp_rule_add(context, SCMP_ACT_ALLOW, number, 0) != 0:
            raise OSError(f"seccomp_rule_add({name}) failed")
    if seccomp.seccomp_load(context) != 0:
        raise OSError("seccomp_load failed")


def main() -> None:
    unit, separator, *program = sys.argv[1:]
    if separator != "--" or not program:
        sys.exit("usage: python -m tests.syscall_filter UNIT_FILE -- PROGRAM ARGS...")
    allowed, error = unit_filter(Path(unit))
    apply(allowed, error)
    os.execv(program[0], program)  # noqa: S606 (the test names the program)


if __name__ == "__main__":
    main()
