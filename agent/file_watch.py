"""One inotify observer for the process: "call me when one of these files changes".

Readers that would otherwise ``stat`` a file on a timer (``/etc/group``, the
spool's files) ask ``watch_files`` instead. Each watched directory costs one
inotify watch and a thread blocked in ``read``: nothing runs until the kernel
reports a change. Only changes are asked for (no open or close-without-write
events: ``/etc`` is read all the time), and only the named files wake the
caller. Where inotify is not to be had, ``watch_files`` returns None and the
caller keeps its timer.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger("courtguard.file_watch")

_lock = threading.Lock()
_observer: Any = None
#: Handlers on each watch: the last one gone, the watch (its inotify descriptor) goes too.
_handlers_on: dict[Any, int] = {}
#: Stands for every name in a watched directory.
ANY = "*"


def _shared_observer() -> Any:
    """The process's observer, started at first use; None where inotify is missing."""
    global _observer
    with _lock:
        if _observer is None:
            try:
                from watchdog.observers.inotify import InotifyObserver
            except ImportError:  # not Linux
                return None
            observer = InotifyObserver()
            observer.daemon = True
            try:
                observer.start()
            except OSError as exc:
                log.warning("inotify unavailable; watched files are polled", error=str(exc))
                return None
            _observer = observer
        return _observer


def watch_files(
    paths: Iterable[str | Path], changed: Callable[[], None]
) -> Callable[[], None] | None:
    """Call ``changed`` (on the observer's thread) after any write, creation, removal or
    rename of one of ``paths`` (of any file directly in it, for a directory).

    Returns the function that stops watching, or None when they cannot be
    watched (no inotify, or a directory missing): the caller then polls.
    """
    from watchdog import events

    observer = _shared_observer()
    if observer is None:
        return None
    names_by_dir: dict[str, set[str]] = defaultdict(set)
    for path in paths:
        resolved = Path(path).absolute()
        if resolved.is_dir():
            names_by_dir[str(resolved)].add(ANY)
        else:
            names_by_dir[str(resolved.parent)].add(resolved.name)

    class Handler(events.FileSystemEventHandler):
        def __init__(self, names: set[str]) -> None:
            self.names = names

        def on_any_event(self, event: events.FileSystemEvent) -> None:
            for where in (event.src_path, getattr(event, "dest_path", "")):
                name = where.decode() if isinstance(where, bytes) else where
                if name and (ANY in self.names or Path(name).name in self.names):
                    changed()
                    return

    kinds: list[type[events.FileSystemEvent]] = [
        events.FileCreatedEvent,
        events.FileModifiedEvent,
        events.FileDeletedEvent,
        events.FileMovedEvent,
        events.FileClosedEvent,
    ]
    scheduled: list[tuple[Any, Any]] = []
    try:
        for directory, names in names_by_dir.items():
            handler = Handler(names)
            with _lock:
                watch = observer.schedule(handler, directory, recursive=False, event_filter=kinds)
                _handlers_on[watch] = _handlers_on.get(watch, 0) + 1
            scheduled.append((handler, watch))
    except OSError as exc:
        log.warning(
            "cannot watch files; they are polled", paths=sorted(names_by_dir), error=str(exc)
        )
        _unschedule(observer, scheduled)
        return None

    def unwatch() -> None:
        _unschedule(observer, scheduled)
        scheduled.clear()

    return unwatch


def _unschedule(observer: Any, scheduled: list[tuple[Any, Any]]) -> None:
    with _lock:
        for handler, watch in scheduled:
            left = _handlers_on.get(watch, 1) - 1
            try:
                if left > 0:
                    observer.remove_handler_for_watch(handler, watch)
                else:
                    observer.unschedule(watch)
            except (KeyError, ValueError):
                pass
            if left > 0:
                _handlers_on[watch] = left
            else:
                _handlers_on.pop(watch, None)
