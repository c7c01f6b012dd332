"""Upload evidence pcaps to the collector in chunks, resuming where it stopped.

For each ``ready`` pcap in the ``ArtifactStore``, oldest first:

1. declare it (``POST /api/v1/evidence/{event_id}``: size, SHA-256, packets);
   the answer is the offset the collector holds, so a restart of either side
   resumes there instead of at 0;
2. send ``evidence_chunk_bytes`` at a time from that offset
   (``PUT ...?offset=N``), recording each acknowledged offset on disk; a 409
   names the offset the collector holds and the upload goes on from there;
3. when the collector confirms the whole file (it checked the SHA-256), delete
   the local copy. A 422 ``hash_mismatch`` starts again from 0 after checking
   the local file still has its hash, at most ``MAX_REFUSALS`` times; a pcap
   the collector will never take (too large, another pcap already held, a
   corrupt local file) is deleted and reported.

An event the collector does not hold yet (404: not shipped) and every
network or server error leave the pcap for the next round, after a back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import structlog

from agent.evidence.artifacts import ArtifactRecord, ArtifactStore, file_sha256
from agent.pacing import Backoff

if TYPE_CHECKING:
    import httpx

log = structlog.get_logger("courtguard.evidence")

#: Hash refusals of one pcap before it is given up.
MAX_REFUSALS: Final = 3
#: How often pcaps waiting on disk are looked at when nothing wakes the uploader.
POLL_S: Final = 30.0

Report = Callable[[str, str, dict[str, Any]], None]


class Retry(Exception):
    """This pcap waits for the next round: the collector or the path to it is not ready."""


class EvidenceUploader:
    """The loop of the module docstring; ``report(code, summary, evidence)`` tells of a loss."""

    def __init__(
        self, store: ArtifactStore, authorization: str, chunk_bytes: int, report: Report,
        backoff: Backoff,
    ) -> None:
        self.store = store
        self.authorization = authorization
        self.chunk_bytes = chunk_bytes
        self.report = report
        self.backoff = backoff
        self._wake = asyncio.Event()
        self.uploaded = 0

    def wake(self) -> None:
        self._wake.set()

    async def run(self, client: httpx.AsyncClient) -> None:
        """Upload until cancelled."""
        while True:
            self._wake.clear()
            records = await asyncio.to_thread(self.store.records)
            failed = False
            for record in records:
                if record.state != "ready":
                    continue
                try:
                    await self.upload(client, record)
                except Retry as exc:
                    log.info("evidence upload waits", event_id=record.event_id, reason=str(exc))
                    failed = True
                    break
            wait = self.backoff.next_delay() if failed else POLL_S
            if not failed:
                self.backoff.reset()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    async def upload(self, client: httpx.AsyncClient, record: ArtifactRecord) -> None:
        """Steps 1-3 for one pcap; raises ``Retry`` when it must wait."""
        offset = await self._declare(client, record)
        while offset is not None:
            if offset != record.acknowledged:
                record = await asyncio.to_thread(self.store.acknowledged, record, offset)
            chunk = await asyncio.to_thread(
                self.store.read_chunk, record.event_id, offset, self.chunk_bytes)
            offset = await self._send(client, record, offset, chunk)
            if offset == -1:  # refused the hash: from 0 again, or given up
                record = await asyncio.to_thread(self.store.refused, record)
                offset = await self._after_refusal(client, record)

    async def _declare(self, client: httpx.AsyncClient, record: ArtifactRecord) -> int | None:
        response = await self._request(
            client, "POST", f"/api/v1/evidence/{record.event_id}",
            json={"size": record.size, "sha256": record.sha256, "packets": record.packets},
        )
        body = _json(response)
        if response.status_code == 200:
            if body.get("complete"):
                await self._done(record)
                return None
            return int(body.get("offset", 0))
        code = body.get("error", f"http_{response.status_code}")
        if response.status_code in (409, 413, 422):
            await self._give_up(record, code, str(body.get("detail", "")))
            return None
        raise Retry(f"{response.status_code} {code}")

    async def _send(
        self, client: httpx.AsyncClient, record: ArtifactRecord, offset: int, chunk: bytes
    ) -> int | None:
        """One chunk; the next offset, None when the pcap is done with, -1 on a hash refusal."""
        response = await self._request(
            client, "PUT", f"/api/v1/evidence/{record.event_id}", params={"offset": offset},
            content=chunk, headers={"Content-Type": "application/octet-stream"},
        )
        body = _json(response)
        status = response.status_code
        if status == 200:
            if body.get("complete"):
                await self._done(record)
                return None
            return int(body["offset"])
        code = body.get("error", f"http_{status}")
        if status == 409 and code == "offset_mismatch":
            held = (body.get("errors") or [{}])[0].get("offset")
            if isinstance(held, int):
                return held
        if status == 422 and code == "hash_mismatch":
            return -1
        if status in (404, 413):
            await self._give_up(record, code, str(body.get("detail", "")))
            return None
        raise Retry(f"{status} {code}")

    async def _after_refusal(self, client: httpx.AsyncClient, record: ArtifactRecord) -> int | None:
        path = self.store.pcap(record.event_id)
        local = await asyncio.to_thread(file_sha256, path)
        if local != record.sha256:
            await self._give_up(record, "local_file_changed",
                                "取证文件在本机被改动，哈希与抓包完成时不符")
            return None
        if record.refusals >= MAX_REFUSALS:
            await self._give_up(record, "hash_mismatch",
                                f"采集器连续 {record.refusals} 次校验哈希不符")
            return None
        log.warning("collector refused the evidence hash; sending again from 0",
                    event_id=record.event_id, refusals=record.refusals)
        return 0

    async def _request(self, client: httpx.AsyncClient, method: str, url: str,
                       **kwargs: Any) -> httpx.Response:
        import httpx

        headers = {"Authorization": self.authorization, **kwargs.pop("headers", {})}
        try:
            return await client.request(method, url, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise Retry(f"cannot reach the collector: {type(exc).__name__}: {exc}") from None

    async def _done(self, record: ArtifactRecord) -> None:
        await asyncio.to_thread(self.store.remove, record.event_id)
        self.uploaded += 1
        log.info("evidence pcap uploaded and verified", event_id=record.event_id,
                 size=record.size, sha256=record.sha256)

    async def _give_up(self, record: ArtifactRecord, code: str, detail: str) -> None:
        await asyncio.to_thread(self.store.remove, record.event_id)
        log.error("evidence pcap given up", event_id=record.event_id, code=code, detail=detail)
        self.report(code, f"取证抓包文件未能上传，已删除：{code}",
                    {"event_id": record.event_id, "code": code, "detail": detail[:300],
                     "size": record.size, "sha256": record.sha256})


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
