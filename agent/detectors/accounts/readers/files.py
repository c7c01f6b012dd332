"""File-system events under protected, persistence and agent paths (inotify via watchdog).

inotify says what changed, never who changed it. A file just created is
attributed to its owner (``file-owner``); everything else carries
``attribution: none`` and the detector names the contractors logged in as
candidates. Persistence paths inside a home belong to that home's owner.
"""

from __future__ import annotations

import os
import pwd
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import structlog
from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from agent.detectors.accounts.observations import AgentTampered, FileTouched

log = structlog.get_logger("courtguard.accounts.files")
Emit = Callable[[Any], None]

PERSISTENCE_IN_HOME: Final = (".ssh", ".config/autostart", ".config/systemd/user")
HISTORY_FILES: Final = frozenset({".bash_history", ".zsh_history", ".history", ".sh_history"})
#: What a watch asks the kernel for where reads do not matter: changes, not opens.
CHANGES_ONLY: Final[list[type[FileSystemEvent]]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    FileClosedEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
]
_ACTIONS: Final = {
    "created": "created",
    "modified": "modified",
    "deleted": "deleted",
    "moved": "moved",
    "opened": "opened",
}


def _owner(path: str) -> str | None:
    try:
        return pwd.getpwuid(os.stat(path).st_uid).pw_name
    except (OSError, KeyError):
        return None


class WatchPlan:
    """What to watch and why: root path -> (purpose, recursive, account owning it or None)."""

    def __init__(self) -> None:
        self.roots: dict[str, tuple[str, bool, str | None]] = {}

    def add(self, path: Path, purpose: str, recursive: bool, account: str | None = None) -> None:
        if path.is_dir():
            self.roots[str(path)] = (purpose, recursive, account)

    def classify(self, path: str) -> tuple[str, str | None] | None:
        best: tuple[int, str, str | None] | None = None
        for root, (purpose, recursive, account) in self.roots.items():
            inside = path == root or path.startswith(root.rstrip("/") + "/")
            if not inside:
                continue
            if not recursive and os.path.dirname(path) != root and path != root:
                continue
            if best is None or len(root) > best[0]:
                best = (len(root), purpose, account)
        return None if best is None else (best[1], best[2])


class FileSource(FileSystemEventHandler):
    """Owns one watchdog observer; ``replan`` swaps what it watches when policy changes."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.plan = WatchPlan()
        self.emit: Emit | None = None
        self.observer: Any = None
        self.lock = threading.Lock()

    def replan(self, plan: WatchPlan) -> None:
        with self.lock:
            self.plan = plan
            if self.observer is None:
                return
            self.observer.unschedule_all()
            self._schedule()

    def _schedule(self) -> None:
        for root, (purpose, recursive, _account) in sorted(self.plan.roots.items()):
            # Only protected paths are watched for reads: elsewhere an open (of the folder
            # itself too, by anything that lists it) would wake the observer for nothing.
            kinds = None if purpose == "protected" else CHANGES_ONLY
            try:
                self.observer.schedule(self, root, recursive=recursive, event_filter=kinds)
            except OSError as exc:
                log.warning("cannot watch path", path=root, error=str(exc))

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or self.emit is None:
            return
        action = _ACTIONS.get(event.event_type)
        if action is None:
            return  # close events repeat the open or the writes before them
        path = (
            os.fsdecode(event.dest_path or event.src_path)
            if event.event_type == "moved"
            else os.fsdecode(event.src_path)
        )
        found = self.plan.classify(path)
        if found is None:
            return
        purpose, home_owner = found
        now = datetime.now(UTC)
        name = os.path.basename(path)
        if purpose == "home" or (action == "opened" and purpose != "protected"):
            if name in HISTORY_FILES and (action == "deleted" or _size(path) == 0):
                self.emit(
                    AgentTampered(
                        time=now,
                        host=self.host,
                        what="history_cleared",
                        path=path,
                        account=home_owner,
                    )
                )
            return
        account, attribution = None, "none"
        if purpose == "persistence" and home_owner is not None:
            account, attribution = home_owner, "file-owner"
        elif purpose == "crontab":
            account, attribution, purpose = name, "file-owner", "persistence"
        elif action == "created":
            account = _owner(path)
            attribution = "file-owner" if account else "none"
        self.emit(
            FileTouched.model_validate(
                {
                    "time": now,
                    "host": self.host,
                    "path": path[:4096],
                    "action": action,
                    "purpose": purpose,
                    "account": account,
                    "attribution": attribution,
                }
            )
        )

    def run(self, emit: Emit, stop: threading.Event) -> None:
        self.emit = emit
        with self.lock:
            self.observer = Observer()
            self._schedule()
            self.observer.start()
        try:
            stop.wait()
        finally:
            self.observer.stop()
            self.observer.join(timeout=5)


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return -1


def build_plan(
    protected: list[str], homes: dict[str, Path], crontab_dirs: list[Path], agent_dirs: list[Path]
) -> WatchPlan:
    """Protected roots (recursive), contractors' homes and persistence dirs, crontabs, the agent."""
    plan = WatchPlan()
    for root in protected:
        plan.add(Path(root), "protected", recursive=True)
    for account, home in homes.items():
        plan.add(home, "home", recursive=False, account=account)
        for sub in PERSISTENCE_IN_HOME:
            plan.add(home / sub, "persistence", recursive=True, account=account)
    for directory in crontab_dirs:
        plan.add(directory, "crontab", recursive=False)
    for directory in agent_dirs:
        plan.add(directory, "tamper", recursive=False)
    return plan
