"""Evidence captures for the daemon: orders in, capture children run, pcaps uploaded.

The daemon hands ``order`` every ``CaptureOrder`` with its event id: a
detector's (a rule with ``capture: true`` fired) and an admin's (from the
ingest answer). For each order, once:

1. reserve room in the ``ArtifactStore`` (its byte budget bounds what waits
   on disk); an order that does not fit is reported and dropped;
2. run ``python -m agent.evidence.capture`` (the only process that imports
   scapy), at most ``MAX_RUNNING`` at a time and ``MAX_WAITING`` queued
   (beyond that an order is reported and dropped), killed if it outlives its
   duration by ``GRACE_S``;
3. hash the pcap and wake the uploader (``agent/evidence/uploader.py``).

A stop kills running children; their half-written pcaps are dropped at the
next start, while pcaps already hashed are uploaded from where they stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from typing import TYPE_CHECKING, Any, Final

import structlog

from agent.events import CaptureOrder
from agent.evidence.artifacts import ArtifactStore
from agent.evidence.uploader import EvidenceUploader, Report
from agent.frozen import child_command, child_environment
from agent.pacing import Backoff

if TYPE_CHECKING:
    import httpx

    from agent.settings import AgentSettings

log = structlog.get_logger("courtguard.evidence")

#: One child at a time: it weighs about as much as the daemon (~65 MB with scapy), and the
#: unit's MemoryHigh (150M) must hold both.
MAX_RUNNING: Final = 1
MAX_WAITING: Final = 16
MAX_REMEMBERED: Final = 4096
#: Seconds a capture child may outlive its duration (scapy's import, closing the file).
GRACE_S: Final = 30.0


class Evidence:
    """See the module docstring."""

    def __init__(self, settings: AgentSettings, authorization: str, report: Report) -> None:
        self.store = ArtifactStore(settings.data_dir / "evidence", settings.evidence_max_bytes)
        self.report = report
        self.uploader = EvidenceUploader(
            self.store, authorization, settings.evidence_chunk_bytes, report,
            Backoff(settings.backoff_initial_s, settings.backoff_max_s, random.random),
        )
        self._slots = asyncio.Semaphore(MAX_RUNNING)
        self._tasks: set[asyncio.Task[None]] = set()
        #: Orders taken up, so an admin's order repeated by every ingest answer runs once;
        #: oldest forgotten first past ``MAX_REMEMBERED`` (the on-disk record covers the rest).
        self._taken: dict[str, None] = {}
        self._children: set[asyncio.subprocess.Process] = set()
        self.captured = 0

    async def start(self) -> None:
        torn = await asyncio.to_thread(self.store.drop_torn)
        if torn:
            log.warning("dropped evidence captures a stop cut short", event_ids=torn)

    async def run_uploads(self, client: httpx.AsyncClient) -> None:
        await self.uploader.run(client)

    def order(self, order: CaptureOrder) -> None:
        """Take up one order (see the module docstring); repeats of a taken order are ignored."""
        event_id = str(order.event_id)
        if order.event_id is None or event_id in self._taken:
            return
        if len(self._tasks) >= MAX_RUNNING + MAX_WAITING:
            self.report("too_many_captures", "取证抓包请求过多，本次未执行",
                        {"event_id": event_id, "code": "too_many_captures"})
            return
        self._taken[event_id] = None
        while len(self._taken) > MAX_REMEMBERED:
            del self._taken[next(iter(self._taken))]
        task = asyncio.create_task(self._capture(order), name=f"capture:{event_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def orders(self, orders: list[CaptureOrder]) -> None:
        for order in orders:
            self.order(order)

    async def _capture(self, order: CaptureOrder) -> None:
        event_id = str(order.event_id)
        if await asyncio.to_thread(self.store.known, event_id):
            return  # taken up before a restart
        record = await asyncio.to_thread(self.store.admit, event_id, order.max_bytes)
        if record is None:
            self.report("evidence_budget", "本机待上传的取证文件已达上限，本次未抓包",
                        {"event_id": event_id, "code": "evidence_budget"})
            return
        async with self._slots:
            outcome = await self._run_child(order, str(self.store.pcap(event_id)))
        if outcome is None:
            await asyncio.to_thread(self.store.remove, event_id)
            return
        done = await asyncio.to_thread(self.store.finish, record, int(outcome.get("packets", 0)))
        self.captured += 1
        log.info("evidence captured", event_id=event_id, packets=done.packets, size=done.size,
                 sha256=done.sha256, stopped_by=outcome.get("stopped_by"))
        self.uploader.wake()

    async def _run_child(self, order: CaptureOrder, out: str) -> dict[str, Any] | None:
        event_id = str(order.event_id)
        child = await asyncio.create_subprocess_exec(
            *child_command("agent.evidence.capture", order.model_dump_json(), out),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL, env=child_environment(),
        )
        self._children.add(child)
        try:
            async with asyncio.timeout(order.duration_s + GRACE_S):
                stdout, stderr = await child.communicate()
        except TimeoutError:
            child.kill()
            await child.wait()
            stdout, stderr = b"", b"the capture outlived its duration and was stopped"
        finally:
            self._children.discard(child)
        if child.returncode == 0:
            with contextlib.suppress(ValueError, IndexError):
                summary = json.loads(stdout.decode(errors="replace").strip().splitlines()[-1])
                if isinstance(summary, dict):
                    return summary
        reason = stderr.decode(errors="replace").strip()[-300:] or f"exit {child.returncode}"
        log.error("evidence capture failed", event_id=event_id, reason=reason)
        self.report("capture_failed", f"取证抓包失败：{reason}"[:500],
                    {"event_id": event_id, "code": "capture_failed", "detail": reason})
        return None

    async def close(self) -> None:
        """Kill running children and cancel waiting orders."""
        for child in list(self._children):
            with contextlib.suppress(ProcessLookupError):
                child.kill()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
