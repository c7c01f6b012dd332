"""The control fields of a ``.deb``, read in pure Python (no dpkg needed on the collector).

A ``.deb`` is an ``ar`` archive: ``debian-binary`` (``2.0``), then
``control.tar[.gz|.xz]``, then ``data.tar.*``. Only the control member is
read; gzip and xz are what ``dpkg-deb --build`` writes for it (zstd, which
some distributions' dpkg write, is refused with a hint: Python's standard
library has no zstd).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Final

from agent.messages import CATALOGUE, N_, _

AR_MAGIC: Final = b"!<arch>\n"
_HEADER: Final = 60


class DebError(ValueError):
    """Not a package we can read; the message says why.

    ``str()`` is Chinese whatever the locale: the agent carries it in its upgrade
    event. ``localized()`` follows the locale, for a command line (the collector's
    ``release publish``).
    """

    def __init__(self, message: str, **fields: object) -> None:
        super().__init__(CATALOGUE.chinese(message).format(**fields))
        self.message = message
        self.fields = fields

    def localized(self) -> str:
        return _(self.message).format(**self.fields)


@dataclass(frozen=True)
class DebControl:
    package: str
    version: str
    architecture: str


def _members(data: bytes) -> list[tuple[str, bytes]]:
    if not data.startswith(AR_MAGIC):
        raise DebError(N_("not a .deb package (no ar archive header)"))
    found: list[tuple[str, bytes]] = []
    at = len(AR_MAGIC)
    while at + _HEADER <= len(data) and len(found) < 3:
        header = data[at:at + _HEADER]
        if header[58:60] != b"`\n":
            raise DebError(N_("an ar archive member header is damaged"))
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise DebError(N_("an ar archive member's size cannot be read")) from None
        start = at + _HEADER
        if size < 0 or start + size > len(data):
            raise DebError(N_("an ar archive member runs past the end of the file "
                               "(the file is incomplete)"))
        found.append((name, data[start:start + size]))
        at = start + size + (size & 1)
    return found


def _parse_control(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line or line[0] in " \t" or ":" not in line:
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip().lower(), value.strip())
    return fields


def read_control(data: bytes) -> DebControl:
    """Package, version and architecture of the ``.deb`` in ``data``; DebError when unreadable."""
    members = _members(data)
    if not members or members[0][0] != "debian-binary" or not members[0][1].startswith(b"2."):
        raise DebError(N_("not a format 2.x .deb package "
                           "(debian-binary missing or of another version)"))
    control = next((body for name, body in members if name.startswith("control.tar")), None)
    name = next((name for name, _ in members if name.startswith("control.tar")), "")
    if control is None:
        raise DebError(N_("the .deb has no control.tar member"))
    if name.endswith(".zst"):
        raise DebError(N_("control.tar.zst cannot be read: "
                           "build the package with dpkg-deb -Zxz or -Zgzip"))
    import tarfile  # only when a release is offered: an idle agent need not hold it

    try:
        with tarfile.open(fileobj=io.BytesIO(control), mode="r:*") as tar:
            member = next((m for m in tar.getmembers()
                           if m.name in ("./control", "control") and m.isfile()), None)
            handle = tar.extractfile(member) if member is not None else None
            if handle is None:
                raise DebError(N_("control.tar has no control file"))
            text = handle.read(256 * 1024).decode("utf-8", "replace")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DebError(N_("control.tar cannot be unpacked: {reason}"), reason=exc) from None
    fields = _parse_control(text)
    missing = [f for f in ("package", "version", "architecture") if not fields.get(f)]
    if missing:
        raise DebError(N_("the control file lacks the fields {fields}"), fields=", ".join(missing))
    return DebControl(fields["package"], fields["version"], fields["architecture"])
