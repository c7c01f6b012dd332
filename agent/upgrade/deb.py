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

AR_MAGIC: Final = b"!<arch>\n"
_HEADER: Final = 60


class DebError(ValueError):
    """Not a package we can read; the message says why (Chinese, for people)."""


@dataclass(frozen=True)
class DebControl:
    package: str
    version: str
    architecture: str


def _members(data: bytes) -> list[tuple[str, bytes]]:
    if not data.startswith(AR_MAGIC):
        raise DebError("不是 .deb 软件包（缺少 ar 归档头）")
    found: list[tuple[str, bytes]] = []
    at = len(AR_MAGIC)
    while at + _HEADER <= len(data) and len(found) < 3:
        header = data[at:at + _HEADER]
        if header[58:60] != b"`\n":
            raise DebError("ar 归档成员头损坏")
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise DebError("ar 归档成员大小无法读取") from None
        start = at + _HEADER
        if size < 0 or start + size > len(data):
            raise DebError("ar 归档成员超出文件末尾（文件不完整）")
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
        raise DebError("不是 2.x 格式的 .deb 软件包（debian-binary 缺失或版本不符）")
    control = next((body for name, body in members if name.startswith("control.tar")), None)
    name = next((name for name, _ in members if name.startswith("control.tar")), "")
    if control is None:
        raise DebError(".deb 中没有 control.tar 成员")
    if name.endswith(".zst"):
        raise DebError("control.tar.zst 无法读取：请用 dpkg-deb -Zxz 或 -Zgzip 构建软件包")
    import tarfile  # only when a release is offered: an idle agent need not hold it

    try:
        with tarfile.open(fileobj=io.BytesIO(control), mode="r:*") as tar:
            member = next((m for m in tar.getmembers()
                           if m.name in ("./control", "control") and m.isfile()), None)
            handle = tar.extractfile(member) if member is not None else None
            if handle is None:
                raise DebError("control.tar 中没有 control 文件")
            text = handle.read(256 * 1024).decode("utf-8", "replace")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DebError(f"control.tar 无法解压：{exc}") from None
    fields = _parse_control(text)
    missing = [f for f in ("package", "version", "architecture") if not fields.get(f)]
    if missing:
        raise DebError(f"control 文件缺少字段：{'、'.join(missing)}")
    return DebControl(fields["package"], fields["version"], fields["architecture"])
