"""One agent daemon per data directory: an exclusive flock on ``<data_dir>/agent.lock``.

``courtguard-agent run`` takes the lock before anything else touches the data
directory and holds it for the life of the process; the kernel lets it go when
the process ends however it ends, so a crash leaves no stale lock. The file
holds the holder's pid, only to name it in the refusal.

``status``, ``scan`` and ``emit-test`` do not take the lock: ``status`` and
``emit-test`` reach the spool through SQLite, which arbitrates readers and
writers itself, and ``scan`` does not touch the data directory.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO, Final

from agent.errors import AlreadyRunningError
from agent.messages import _

LOCK_FILE: Final = "agent.lock"


def lock_path(data_dir: Path) -> Path:
    return data_dir / LOCK_FILE


def _holder(handle: IO[str]) -> str:
    handle.seek(0)
    text = handle.read(32).strip()
    return text if text.isdigit() else "?"


def hold_data_dir(data_dir: Path) -> IO[str]:
    """Take the data directory for this process; keep the returned file open while running."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = lock_path(data_dir)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    handle = os.fdopen(fd, "r+", encoding="ascii")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _holder(handle)
        handle.close()
        raise AlreadyRunningError(
            _("another courtguard agent (pid {pid}) is already running on {data_dir}").format(
                pid=pid, data_dir=data_dir),
            hint=_("stop it first (systemctl stop courtguard-agent), or give this one another "
                   "data_dir in its agent.toml"),
        ) from None
    except BaseException:
        handle.close()
        raise
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle
