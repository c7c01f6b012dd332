"""Small ``.deb`` files built in Python (ar + tar), for tests that need a package's bytes."""

from __future__ import annotations

import io
import tarfile
import time


def _tar(files: dict[str, bytes], mode: str) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=mode) as tar:  # type: ignore[call-overload]  # mode is a str chosen at run time
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _ar_member(name: str, data: bytes) -> bytes:
    header = (f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}").encode() + b"`\n"
    return header + data + (b"\n" if len(data) % 2 else b"")


def make_deb(version: str, architecture: str = "amd64", package: str = "courtguard-agent",
             compression: str = "gz", payload: bytes = b"agent") -> bytes:
    control = (f"Package: {package}\nVersion: {version}\nArchitecture: {architecture}\n"
               "Maintainer: courtguard <ops@example.invalid>\nDescription: test agent\n").encode()
    suffix = {"gz": ".gz", "xz": ".xz", "none": ""}[compression]
    mode = {"gz": "w:gz", "xz": "w:xz", "none": "w"}[compression]
    return (b"!<arch>\n" + _ar_member("debian-binary", b"2.0\n")
            + _ar_member(f"control.tar{suffix}", _tar({"./control": control}, mode))
            + _ar_member("data.tar.gz", _tar({"./opt/courtguard/payload": payload}, "w:gz")))
