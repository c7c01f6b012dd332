"""Version order for agent releases: Debian's (``dpkg --compare-versions``), and the agent's own.

A release is a ``.deb`` whose ``Version`` field is ``[epoch:]upstream[-revision]``,
compared with dpkg's algorithm (``0.13.1~rc1 < 0.13.1 < 0.13.1-2 < 1:0.1``).
The agent reports ``agent.version.__version__``, a PEP 440 version: it is
brought to Debian form first (``debian_form``: pre-releases and dev builds
sort before their release, as ``~`` does), so the package build writes PEP 440
``0.14.0rc1`` as ``0.14.0~rc1``.
"""

from __future__ import annotations

import re
from typing import Final

_PRE: Final = re.compile(r"(?<=\d)[._-]?(a|b|rc|c|alpha|beta|pre|preview|dev)(?=\d|$)",
                         re.IGNORECASE)
_LOCAL: Final = re.compile(r"\+.*$")


def debian_form(version: str) -> str:
    """A PEP 440 version as a Debian version: ``1.2rc1`` → ``1.2~rc1``.

    A local label (``+unknown``) is dropped: it names a build, not an order.
    """
    text = _LOCAL.sub("", version.strip())
    return _PRE.sub(lambda m: "~" + m.group(1).lower(), text)



def _order(char: str) -> int:
    if char == "~":
        return -1
    if char.isalpha():
        return ord(char)
    return ord(char) + 256


def _compare_part(a: str, b: str) -> int:
    """dpkg's ``verrevcmp``: alternating non-digit and digit runs."""
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) and not a[i].isdigit() else 0
            bc = _order(b[j]) if j < len(b) and not b[j].isdigit() else 0
            if ac != bc:
                return -1 if ac < bc else 1
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return -1 if first_diff < 0 else 1
    return 0


def _split(version: str) -> tuple[int, str, str]:
    epoch = 0
    text = version
    if ":" in text:
        head, text = text.split(":", 1)
        epoch = int(head) if head.isdigit() else 0
    revision = ""
    if "-" in text:
        text, revision = text.rsplit("-", 1)
    return epoch, text, revision


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as Debian version ``a`` sorts before, with or after ``b``."""
    ea, ua, ra = _split(a)
    eb, ub, rb = _split(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _compare_part(ua, ub) or _compare_part(ra, rb)


def release_order(release_version: str, running: str) -> int:
    """``compare`` of a package's version (its revision left out) with a running agent's.

    The agent knows only its own upstream version: a package revision
    (``0.13.1-2``) is the same agent as ``0.13.1``, not a newer one.
    """
    epoch, text, _ = _split(release_version)
    return compare(f"{epoch}:{text}" if epoch else text, debian_form(running))


def runs(release_version: str, running: str) -> bool:
    """Whether an agent reporting ``running`` runs the release ``release_version``."""
    return release_order(release_version, running) == 0
