"""What an agent checks before it installs a release, in this order.

1. The signature over the exact package bytes, with the key and algorithm the
   agent pinned at enrollment (``agent.signing``), before the bytes are read
   at all: a tampered or foreign package is refused as ``bad_signature``.
2. The control fields of the now trusted bytes (``agent.upgrade.deb``): the
   package must be the agent's (``PACKAGE``), for this machine's architecture,
   and newer than the running version (Debian order, ``agent.upgrade.versions``).
3. The group the collector says the release targets (``*`` for all) must be
   the agent's own. It is the collector's routing, sent over the agent's
   authenticated TLS connection; the package bytes cannot carry it, since
   promote retargets the same bytes.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
from dataclasses import dataclass
from typing import Final

from agent.signing import PublicKey, SignatureMismatch
from agent.upgrade import versions
from agent.upgrade.deb import DebControl, DebError, read_control

#: The Debian package name of the agent (packaging/agent builds it).
PACKAGE: Final = "courtguard-agent"
#: The largest package the agent downloads (its runtime is inside: tens of MB).
MAX_PACKAGE_BYTES: Final = 512 * 1024 * 1024
ALL_GROUPS: Final = "*"

#: ``platform.machine()`` to dpkg architecture, for the machines courts run.
_DPKG_ARCH: Final = {
    "x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
    "loongarch64": "loong64", "mips64": "mips64el", "i686": "i386", "i386": "i386",
}


class ReleaseRefused(Exception):
    """A release the agent will not install; ``code`` for machines, ``reason`` in Chinese."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class Release:
    control: DebControl
    body: bytes
    signature: str


def machine_architecture() -> str:
    """This machine's dpkg architecture: dpkg's own answer, else from ``platform.machine``."""
    dpkg = shutil.which("dpkg")
    if dpkg is not None:
        try:
            found = subprocess.run([dpkg, "--print-architecture"], capture_output=True,  # noqa: S603 (fixed arguments)
                                   text=True, timeout=10, check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            found = ""
        if found:
            return found
    machine = platform.machine().lower()
    return _DPKG_ARCH.get(machine, machine)


def check_release(
    body: bytes,
    signature: str,
    public_key: str,
    *,
    running_version: str,
    architecture: str,
    group: str,
    target_group: str,
    claimed_algorithm: str | None = None,
) -> Release:
    """The release, when every check passes; ReleaseRefused saying which one failed."""
    try:
        key = PublicKey.parse(public_key)
    except SignatureMismatch as exc:
        raise ReleaseRefused("bad_signature", f"登记时固定的公钥不可用：{exc.reason}") from None
    if claimed_algorithm is not None and claimed_algorithm != key.algorithm:
        raise ReleaseRefused(
            "bad_signature",
            f"收集端声称以 {claimed_algorithm} 签名，而本机固定的是 {key.algorithm} 公钥")
    try:
        key.verify(body, signature)
    except SignatureMismatch as exc:
        raise ReleaseRefused("bad_signature", f"软件包签名验证失败：{exc.reason}") from None
    try:
        control = read_control(body)
    except DebError as exc:
        raise ReleaseRefused("malformed", str(exc)) from None
    if control.package != PACKAGE:
        raise ReleaseRefused("other_package",
                             f"软件包 {control.package} 不是 {PACKAGE}，不予安装")
    if control.architecture not in (architecture, "all"):
        raise ReleaseRefused(
            "other_arch", f"软件包架构为 {control.architecture}，本机为 {architecture}")
    if target_group not in (ALL_GROUPS, group):
        raise ReleaseRefused("other_group", f"发布面向分组 {target_group}，本机属于分组 {group}")
    order = versions.release_order(control.version, running_version)
    if order == 0:
        raise ReleaseRefused("same_version", f"已在运行版本 {running_version}")
    if order < 0:
        raise ReleaseRefused(
            "older_version",
            f"软件包版本 {control.version} 不高于正在运行的版本 {running_version}，不予降级")
    return Release(control, body, signature)
