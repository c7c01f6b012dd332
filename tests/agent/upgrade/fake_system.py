"""A stand-in machine for the upgrader test: an install command and an agent that keeps
the health contract (``agent.upgrade.state``), run under a supervisor like Restart=always.

``install DIR PACKAGE``: records the package's version as installed (a payload of
``broken`` marks a version whose agent exits at once; ``fail-install`` fails).
``agent DIR DATA_DIR``: starts as the installed version: writes ``agent.pid``, exits
with 3 when that version is broken, else says it is ready and waits for SIGTERM.
"""

from __future__ import annotations

import io
import signal
import sys
import tarfile
import time
from pathlib import Path

from agent.upgrade import state
from agent.upgrade.deb import read_control


def _payload(body: bytes) -> bytes:
    at = body.index(b"data.tar.gz")
    size = int(body[at + 48:at + 58].decode().strip())
    data = body[at + 60:at + 60 + size]
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        member = tar.extractfile("./opt/courtguard/payload")
        assert member is not None
        return member.read()


def install(system: Path, package: Path) -> int:
    body = package.read_bytes()
    payload = _payload(body)
    if payload == b"fail-install":
        print("dpkg: error processing archive (test)", file=sys.stderr)
        return 1
    version = read_control(body).version
    (system / "installed").write_text(f"{version} {payload.decode()}")
    with (system / "install.log").open("a") as log:
        log.write(version + "\n")
    return 0


def agent(system: Path, data_dir: Path) -> int:
    version, payload = (system / "installed").read_text().split(" ", 1)
    state.mark_started(data_dir)
    if payload == "broken":
        return 3
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    state.mark_ready(data_dir, version)
    while not stop:
        time.sleep(0.05)
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "install":
        sys.exit(install(Path(sys.argv[2]), Path(sys.argv[3])))
    sys.exit(agent(Path(sys.argv[2]), Path(sys.argv[3])))
