"""The files an upgrade leaves under ``<data_dir>/releases/`` (mode 0600, owner root).

* ``<sha256>.deb``: a verified package, kept while it is the one to install or the
  one to go back to; ``current.deb`` is the package of the running version once an
  upgrade succeeded (the rollback package of the next one);
* ``agent.pid``: the running agent's pid, written at start: the restart path when
  systemd is not running (the upgrader sends it SIGTERM; the supervisor starts the
  installed version again);
* ``running.json``: ``{"version", "pid", "ready_at"}``, written once the agent is
  ready (after ``READY=1``): the upgrader's health signal;
* ``result.json``: the upgrade in progress or the last one's outcome
  (``installing``, ``installed``, ``failed``), read by the agent to report it.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any, Final

# Imported up front: the upgrader must not import from a tree dpkg is replacing.
from agent.enrollment import write_private

RELEASES_DIR: Final = "releases"
CURRENT: Final = "current.deb"


def releases_dir(data_dir: Path) -> Path:
    path = data_dir / RELEASES_DIR
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def write_json(path: Path, value: dict[str, Any]) -> None:
    write_private(path, json.dumps(value, ensure_ascii=False, sort_keys=True).encode())


def write_package(path: Path, body: bytes) -> None:
    """A verified package, owner-only, complete before its name appears."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
        out.write(body)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def mark_started(data_dir: Path) -> None:
    """The agent is starting: its pid for the upgrader, and no health claim yet."""
    directory = releases_dir(data_dir)
    (directory / "agent.pid").write_text(str(os.getpid()), encoding="ascii")


def mark_ready(data_dir: Path, version: str) -> None:
    write_json(releases_dir(data_dir) / "running.json",
               {"version": version, "pid": os.getpid(), "ready_at": time.time()})


def agent_pid(data_dir: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int((releases_dir(data_dir) / "agent.pid").read_text(encoding="ascii").strip())
    return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_agent(pid: int) -> bool:
    """Whether ``pid`` is alive and an agent (a pid from a file may be anyone's by now)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"agent" in command


def result_path(data_dir: Path) -> Path:
    return releases_dir(data_dir) / "result.json"
