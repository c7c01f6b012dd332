"""Follow authentication logs: the systemd journal, else syslog files, with a cursor on disk.

Records carry the agent's configured host name (the one every event reports,
and the one roles assign), not the name syslog wrote into the line.

Journal: ``journalctl -f -o json`` with one ``SYSLOG_IDENTIFIER=`` match per
program we parse, so journald does the filtering and only those lines reach
Python; started ``--after-cursor`` the last entry handled
(``<data>/accounts-journal.cursor``).

Files: each existing path of ``auth_logs`` is polled; the cursor
(``accounts-authlog.json``: inode and offset per path) advances over complete
lines only.

Either way the cursor is not saved when a line is read but when the daemon
has handled it: each batch of records is followed by a ``Checkpoint`` that the
source commits only once everything before it has been evaluated and its
findings spooled (the daemon pulls the next observation only then). A stop or
crash therefore never skips a line; a crash between spooling and the commit
can repeat the lines of that one batch. Lines that were all filtered out
(staff and system lines, most of a busy log) move the cursor at most every
``IDLE_CHECKPOINT_S`` (``CheckpointPacer``): reading them again after a crash
costs a little CPU and yields nothing, while saving the cursor after every
poll or journal entry cost a file write each time. Rotation (a new inode
at the path) reads what was left in the renamed file first when it can be
found (``<path>.1``); a file that shrank in place was truncated, which is a
tampering signal, reported as such. On the very first start there is no
cursor and reading starts at the end: history is not replayed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import structlog

from agent.detectors.accounts.observations import AgentTampered
from agent.detectors.accounts.readers.authlog_parser import (
    Concerns,
    parse_journal_entry,
    parse_json_object,
    parse_syslog_line,
)

log = structlog.get_logger("courtguard.accounts.authlog")

IDENTIFIERS: Final = (
    "sshd",
    "sshd-session",
    "sudo",
    "su",
    "login",
    "gdm-password]",
    "lightdm",
    "systemd-logind",
    "useradd",
    "usermod",
    "userdel",
    "groupadd",
    "gpasswd",
    "passwd",
    "chpasswd",
    "crontab",
    "udisksd",
    "pkexec",
    "polkitd",
)
MAX_READ: Final = 4 * 1024 * 1024
IDLE_CHECKPOINT_S: Final = 10.0

Emit = Callable[[Any], None]


def _keep_all(actor: str | None, target: str | None) -> bool:
    return True


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@dataclass(frozen=True)
class Checkpoint:
    """Not an observation: a cursor to save once everything emitted before it is handled."""

    path: Path
    text: str

    def commit(self) -> None:
        _write_atomically(self.path, self.text)


class CheckpointPacer:
    """When to hand on a cursor: at once after anything was handed on, else now and then.

    After kept records the checkpoint must follow them (so they are never read
    twice); after lines that were all filtered out it may wait ``idle_s``.
    """

    def __init__(
        self, idle_s: float = IDLE_CHECKPOINT_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.idle_s = idle_s
        self._clock = clock
        self._last: float | None = None

    def due(self, handed_on: bool) -> bool:
        now = self._clock()
        if handed_on or self._last is None or now - self._last >= self.idle_s:
            self._last = now
            return True
        return False


class JournalFollower:
    """``journalctl -f`` as a child process; ``usable()`` says whether this host has a journal."""

    def __init__(self, cursor_file: Path, host: str, keep: Concerns = _keep_all) -> None:
        self.cursor_file = cursor_file
        self.host = host
        self.keep = keep
        self.process: subprocess.Popen[bytes] | None = None
        self.pacer = CheckpointPacer()

    @staticmethod
    def usable() -> bool:
        journalctl = shutil.which("journalctl")
        if journalctl is None:
            return False
        try:
            probe = subprocess.run(  # noqa: S603 (fixed argv, no shell)
                [journalctl, "-n", "1", "-o", "json", "-q"],
                capture_output=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        return probe.returncode == 0 and bool(probe.stdout.strip())

    def run(self, emit: Emit, stop: threading.Event) -> None:
        journalctl = shutil.which("journalctl") or "journalctl"
        argv = [journalctl, "-f", "-o", "json", "-q"]
        try:
            argv.append(f"--after-cursor={self.cursor_file.read_text().strip()}")
        except OSError:
            argv += ["-n", "0"]  # first start: no history replay
        for index, identifier in enumerate(IDENTIFIERS):
            argv += (["+"] if index else []) + [f"SYSLOG_IDENTIFIER={identifier}"]
        self.process = subprocess.Popen(  # noqa: S603 (fixed argv, no shell)
            argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        assert self.process.stdout is not None  # noqa: S101 (PIPE was asked for)
        pending: str | None = None
        try:
            for line in self.process.stdout:
                if stop.is_set():
                    break
                entry = parse_json_object(line)
                if entry is None:
                    continue
                # Only records naming a contractor are built and handed on: staff and
                # system lines never cross to the event loop.
                record = parse_journal_entry(entry, self.keep)
                batch: list[Any] = []
                if record is not None:
                    batch.append(record.model_copy(update={"host": self.host}))
                cursor = entry.get("__CURSOR")
                if isinstance(cursor, str):
                    pending = cursor
                if pending is not None and self.pacer.due(bool(batch)):
                    batch.append(Checkpoint(self.cursor_file, pending))
                    pending = None
                if batch:
                    emit(batch)
        finally:
            self.stop()
            if pending is not None:
                emit([Checkpoint(self.cursor_file, pending)])

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


class FileFollower:
    """Tail syslog files with an inode+offset cursor; see the module docstring."""

    def __init__(
        self,
        paths: list[Path],
        cursor_file: Path,
        host: str,
        poll_s: float,
        keep: Concerns = _keep_all,
    ) -> None:
        self.keep = keep
        self.paths = paths
        self.cursor_file = cursor_file
        self.host = host
        self.poll_s = poll_s
        self.cursor: dict[str, dict[str, int]] = self._load_cursor()
        self.pacer = CheckpointPacer()
        self._unsaved = False

    def _load_cursor(self) -> dict[str, dict[str, int]]:
        try:
            data = json.loads(self.cursor_file.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {
            k: {"inode": int(v["inode"]), "offset": int(v["offset"])}
            for k, v in data.items()
            if isinstance(v, dict) and "inode" in v and "offset" in v
        }

    def _save_cursor(self) -> None:
        self._checkpoint().commit()

    def _checkpoint(self) -> Checkpoint:
        return Checkpoint(self.cursor_file, json.dumps(self.cursor, sort_keys=True))

    def existing(self) -> list[Path]:
        return [p for p in self.paths if p.is_file()]

    def start_positions(self) -> None:
        """Paths with no cursor start at their end (no history replay on first start)."""
        changed = False
        for path in self.existing():
            if str(path) not in self.cursor:
                st = path.stat()
                self.cursor[str(path)] = {"inode": st.st_ino, "offset": st.st_size}
                changed = True
        if changed:
            self._save_cursor()

    def poll_once(self, emit: Emit) -> int:
        """Read what is new in every file; return the number of lines read."""
        lines = 0
        changed = False
        handed_on = False

        def hand_on(observations: Any) -> None:
            nonlocal handed_on
            handed_on = True
            emit(observations)

        for path in self.existing():
            key = str(path)
            try:
                st = path.stat()
            except OSError:
                continue
            entry = self.cursor.get(key)
            if entry is None:
                entry = self.cursor[key] = {"inode": st.st_ino, "offset": 0}
                changed = True
            if entry["inode"] != st.st_ino:
                lines += self._drain_rotated(path, entry, hand_on)
                entry.update(inode=st.st_ino, offset=0)
                changed = True
            elif st.st_size < entry["offset"]:
                hand_on(
                    AgentTampered(
                        time=datetime.now(UTC), host=self.host, what="log_truncated", path=key
                    )
                )
                entry["offset"] = 0
                changed = True
            if st.st_size > entry["offset"]:
                read, offset = self._read(path, entry["offset"], hand_on)
                lines += read
                entry["offset"] = offset
                changed = True
        self._unsaved = self._unsaved or changed
        if self._unsaved and self.pacer.due(handed_on):
            emit([self._checkpoint()])
            self._unsaved = False
        return lines

    def _drain_rotated(self, path: Path, entry: dict[str, int], emit: Emit) -> int:
        for candidate in (path.with_name(path.name + ".1"), path.with_name(path.name + "-old")):
            try:
                if candidate.stat().st_ino == entry["inode"]:
                    read, _ = self._read(candidate, entry["offset"], emit)
                    return read
            except OSError:
                continue
        log.warning(
            "log rotated and the old file was not found; lines may be missed", path=str(path)
        )
        return 0

    def _read(self, path: Path, offset: int, emit: Emit) -> tuple[int, int]:
        """Parse the complete lines after ``offset``; a line still being written waits."""
        with path.open("rb") as handle:
            handle.seek(offset)
            chunk = handle.read(MAX_READ)
        complete, newline, rest = chunk.rpartition(b"\n")
        if not newline:
            if len(rest) < MAX_READ:
                return 0, offset
            complete, rest = rest, b""  # one absurdly long line: take it rather than stall
        zone = datetime.now().astimezone().tzinfo or UTC
        year = datetime.now(zone).year  # once per read, not per line: BSD stamps have none
        lines = complete.split(b"\n")
        records = []
        for raw in lines:
            record = parse_syslog_line(
                raw.decode("utf-8", "replace"), year=year, tz=zone, concerns=self.keep
            )
            if record is not None:
                records.append(record.model_copy(update={"host": self.host}))
        if records:
            emit(records)  # one hand-over per read, not one per line: fewer loop wake-ups
        return len(lines), offset + len(chunk) - len(rest)

    def run(self, emit: Emit, stop: threading.Event) -> None:
        self.start_positions()
        while not stop.is_set():
            try:
                self.poll_once(emit)
            except OSError as exc:
                log.warning("auth log unreadable; retrying", error=str(exc))
            stop.wait(self.poll_s)
        if self._unsaved:
            emit([self._checkpoint()])
