"""Evidence pcaps on the agent's disk until the collector holds them whole.

``data_dir/evidence/`` keeps, per event, ``<event id>.pcap`` and
``<event id>.json`` (its ``ArtifactRecord``). A record is written atomically
(temporary file, rename) at each step of its life:

1. ``capturing``: the child runs; a record left in this state by a stopped
   agent is a torn capture and is dropped at the next start;
2. ``ready``: the pcap is closed and hashed; the uploader sends it from
   ``acknowledged`` on (the offset the collector last confirmed), so an agent
   restart resumes where it stopped;
3. gone: once the collector confirmed the whole file and its hash, or when
   the collector refuses it for good (``failed`` is logged first).

The directory is bounded: ``admit`` refuses a capture whose worst case
(``max_bytes``) would take the pcaps waiting on disk past the budget.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

State = Literal["capturing", "ready"]


@dataclass(frozen=True)
class ArtifactRecord:
    """What the agent knows of one evidence pcap."""

    event_id: str
    state: State
    max_bytes: int
    size: int = 0
    sha256: str = ""
    packets: int = 0
    acknowledged: int = 0
    refusals: int = 0


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


class ArtifactStore:
    """The ``evidence`` directory; see the module docstring. Blocking: call it from a thread."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes

    def pcap(self, event_id: str) -> Path:
        return self.directory / f"{event_id}.pcap"

    def _record_path(self, event_id: str) -> Path:
        return self.directory / f"{event_id}.json"

    def records(self) -> list[ArtifactRecord]:
        """Every record on disk, oldest file first."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in sorted(self.directory.glob("*.json"), key=lambda p: p.stat().st_mtime):
            record = self.read(path.stem)
            if record is not None:
                found.append(record)
        return found

    def read(self, event_id: str) -> ArtifactRecord | None:
        try:
            data = json.loads(self._record_path(event_id).read_text())
            return ArtifactRecord(**data)
        except (OSError, ValueError, TypeError):
            return None

    def write(self, record: ArtifactRecord) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self._record_path(record.event_id)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(record)))
        tmp.replace(path)

    def known(self, event_id: uuid.UUID | str) -> bool:
        return self._record_path(str(event_id)).exists()

    def admit(self, event_id: uuid.UUID | str, max_bytes: int) -> ArtifactRecord | None:
        """Reserve room for a capture of at most ``max_bytes``; None when it would not fit."""
        waiting = sum(
            r.size if r.state == "ready" else r.max_bytes for r in self.records()
        )
        if waiting + max_bytes > self.max_bytes:
            return None
        record = ArtifactRecord(event_id=str(event_id), state="capturing", max_bytes=max_bytes)
        self.write(record)
        return record

    def finish(self, record: ArtifactRecord, packets: int) -> ArtifactRecord:
        """The child is done: hash the pcap and mark it ready to upload."""
        path = self.pcap(record.event_id)
        done = replace(
            record, state="ready", size=path.stat().st_size, sha256=file_sha256(path),
            packets=packets,
        )
        self.write(done)
        return done

    def acknowledged(self, record: ArtifactRecord, offset: int) -> ArtifactRecord:
        moved = replace(record, acknowledged=offset)
        self.write(moved)
        return moved

    def refused(self, record: ArtifactRecord) -> ArtifactRecord:
        again = replace(record, acknowledged=0, refusals=record.refusals + 1)
        self.write(again)
        return again

    def remove(self, event_id: str) -> None:
        for path in (self.pcap(event_id), self._record_path(event_id)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def drop_torn(self) -> list[str]:
        """Remove captures a stopped agent left half-written; their event ids."""
        torn = [r.event_id for r in self.records() if r.state == "capturing"]
        for event_id in torn:
            self.remove(event_id)
        return torn

    def read_chunk(self, event_id: str, offset: int, size: int) -> bytes:
        with self.pcap(event_id).open("rb") as handle:
            handle.seek(offset)
            return handle.read(size)
