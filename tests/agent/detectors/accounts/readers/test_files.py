"""The file reader on real inotify: persistence, history and protected paths."""

from __future__ import annotations

import getpass
import threading
import time
from pathlib import Path
from typing import Any

from agent.detectors.accounts.observations import AgentTampered, FileTouched
from agent.detectors.accounts.readers.files import FileSource, build_plan


def test_file_source_on_real_inotify(tmp_path: Path) -> None:
    """A key added under a contractor's ~/.ssh, an emptied history, a new protected file."""
    home, protected = tmp_path / "home", tmp_path / "cases"
    (home / ".ssh").mkdir(parents=True)
    protected.mkdir()
    history = home / ".bash_history"
    history.write_text("ls\n")
    source = FileSource("ws-it-01")
    source.replan(build_plan([str(protected)], {"wb_a": home}, [], []))
    seen: list[Any] = []
    stop = threading.Event()
    thread = threading.Thread(target=source.run, args=(seen.append, stop), daemon=True)
    thread.start()
    try:
        time.sleep(0.3)  # the observer has scheduled its watches
        (home / ".ssh" / "authorized_keys").write_text("ssh-ed25519 AAAA test\n")
        history.write_text("")
        (protected / "case.txt").write_text("x")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (
            any(isinstance(o, AgentTampered) for o in seen)
            and any(isinstance(o, FileTouched) and o.purpose == "protected" for o in seen)
            and any(isinstance(o, FileTouched) and o.purpose == "persistence" for o in seen)
        ):
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(10)
    keys = next(o for o in seen if isinstance(o, FileTouched) and o.purpose == "persistence")
    assert (keys.account, keys.attribution) == ("wb_a", "file-owner")
    cleared = next(o for o in seen if isinstance(o, AgentTampered))
    assert (cleared.what, cleared.account) == ("history_cleared", "wb_a")
    created = next(
        o
        for o in seen
        if isinstance(o, FileTouched) and o.purpose == "protected" and o.action == "created"
    )
    assert created.account == getpass.getuser() and created.attribution == "file-owner"

