"""Ship spooled events to the collector, one batch at a time, in sequence order.

Each round:

1. wait for events: the daemon wakes the shipper when it spools something,
   and inotify on the spool's files (``agent.file_watch``) wakes it when
   another process (``emit-test``) wrote rows; an idle shipper otherwise
   sleeps ``FULL_LOOK_S``. Where inotify cannot be had, the spool's files are
   looked at every ``spool_poll_s``: only when their size or time changed
   since the spool was last found empty (or ``FULL_LOOK_S`` passed) is the
   spool itself read, so an idle agent costs a ``stat``, not a database query;
2. wait up to ``batch_max_age_s`` for a batch to fill, unless a full one
   (``batch_max_events`` or ``batch_max_bytes``) is ready or a flush is on;
3. after an outage, when a backlog waits, sleep a random start jitter so a
   thousand agents reconnecting at once do not arrive together;
4. read the oldest events, take tokens from the drain-rate bucket;
5. POST the gzipped ``EventBatch`` and act on the answer (``_handle``).

Only one batch is in flight, so the collector sees each agent's events in
``seq`` order. Nothing is deleted without an acknowledgement: on 401/403 the
shipper stops and events stay spooled; invalid events (422) and events too
large to ever be accepted (413 on a batch of one) are quarantined, counted
and reported, never silently lost. A 422 saying the collector already holds
a seq under another id (``max_seq`` in its items: this spool restarted its
numbering) renumbers the waiting events above it instead.

One event the collector fails to store must not hold back every later event
and heartbeat. A server error other than 503 (500, 502, 504...) is retried
with backoff; when the same batch fails ``SERVER_ERRORS_BEFORE_SPLIT`` times
in a row and the collector's ``/healthz`` answers 200 (it and its database are
up), the batch is halved like a 413, down to the single event, which is
quarantined. While ``/healthz`` does not answer 200, or on 503, timeouts and
connection errors, nothing is split or quarantined: the events wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import ValidationError

from agent.enrollment import Credentials
from agent.events import ACCEPTS_HEADER, CaptureOrder, ErrorBody, IngestResult
from agent.file_stamps import Stamp, file_stamp
from agent.pacing import Backoff, PacedBucket

if TYPE_CHECKING:
    import httpx

    from agent.network_changes import NetworkChanges
    from agent.settings import AgentSettings
    from agent.spool import Spool

log = structlog.get_logger("courtguard.shipper")

Sleep = Callable[[float], Awaitable[None]]

#: Server errors in a row on one batch, with the collector healthy, before it is halved.
SERVER_ERRORS_BEFORE_SPLIT = 2
#: An empty spool whose files look unchanged is still read this often: a write that left
#: size and time as they were (a reused WAL, a coarse clock) is found within this.
FULL_LOOK_S = 30.0

def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Parse a Retry-After header (delta-seconds or an HTTP date); None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class Shipper:
    """The loop that empties the spool into the collector; see the module docstring."""

    def __init__(
        self,
        spool: Spool,
        credentials: Credentials,
        settings: AgentSettings,
        *,
        transport: Any = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        on_policy_hint: Callable[[str | None], None] | None = None,
        network: NetworkChanges | None = None,
        on_capture_orders: Callable[[list[CaptureOrder]], None] | None = None,
        on_isolation_hint: Callable[[int | None], None] | None = None,
        on_release_hint: Callable[[int | None], None] | None = None,
    ) -> None:
        self._on_capture_orders = on_capture_orders
        self.spool = spool
        self._network = network
        self._path_changed = asyncio.Event()
        self._on_policy_hint = on_policy_hint
        self._on_isolation_hint = on_isolation_hint
        self._on_release_hint = on_release_hint
        self.credentials = credentials
        self.settings = settings
        self._transport = transport
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._flushing = False
        self._pending_since: float | None = None
        self._after_outage = True  # a fresh start may find a backlog too
        self._limit = settings.batch_max_events
        self.backoff = Backoff(settings.backoff_initial_s, settings.backoff_max_s, rng)
        self.bucket = PacedBucket(
            settings.drain_rate_eps,
            max(float(settings.batch_max_events), settings.drain_rate_eps),
            clock,
            sleep,
        )
        self.stopped_reason: str | None = None
        self.batches_sent = 0
        self._server_errors = 0  # in a row, since the last acknowledged batch
        #: The spool files' stamp when the spool was last read and found empty, and when.
        self._empty_stamp: Stamp | None = None
        self._empty_at = 0.0
        self._wakes = 0
        self.spool_reads = 0
        #: inotify tells of other processes' writes: no short poll for them.
        self.spool_watched = False

    def wake(self) -> None:
        """Tell the shipper new events are in the spool."""
        self._wakes += 1
        self._empty_stamp = None
        self._wake.set()

    def _spool_stamp(self) -> Stamp:
        path = str(self.spool.path)
        return file_stamp(path, path + "-wal")

    def _still_empty(self) -> bool:
        """The spool was empty at the last read and its files have not changed since."""
        return (
            self._empty_stamp is not None
            and self._clock() - self._empty_at < FULL_LOOK_S
            and self._spool_stamp() == self._empty_stamp
        )

    def _watch_spool(self, loop: asyncio.AbstractEventLoop) -> Callable[[], None] | None:
        from agent.file_watch import watch_files

        def written() -> None:  # on the observer's thread
            loop.call_soon_threadsafe(self.wake)

        path = str(self.spool.path)
        unwatch = watch_files([path, path + "-wal"], written)
        self.spool_watched = unwatch is not None
        return unwatch

    def _idle_wait_s(self) -> float:
        return FULL_LOOK_S if self.spool_watched else self.settings.spool_poll_s

    def make_client(self) -> httpx.AsyncClient:
        from agent.collector_http import collector_client  # httpx loads only where it is used

        return collector_client(self.credentials, self.settings, self._transport, self._network)

    def network_changed(self) -> None:
        """The route to the collector may be back: a back-off wait ends now."""
        self._path_changed.set()

    async def run(self) -> None:
        """Ship until stopped by the collector (401/403) or cancelled."""
        unsubscribe = self._network.subscribe(self.network_changed) if self._network else None
        unwatch = self._watch_spool(asyncio.get_running_loop())
        try:
            async with self.make_client() as client:
                while self.stopped_reason is None:
                    await self.ship_once(client)
        finally:
            if unsubscribe is not None:
                unsubscribe()
            if unwatch is not None:
                unwatch()
                self.spool_watched = False
        self._drained.set()  # nothing more will leave; let a flush return

    async def flush(self, within_s: float) -> bool:
        """Ship without waiting for batches to fill until the spool is empty; False on timeout."""
        self._flushing = True
        deadline = self._clock() + within_s
        while self.stopped_reason is None:
            self._drained.clear()
            self.wake()
            try:
                async with asyncio.timeout(max(0.0, deadline - self._clock())):
                    await self._drained.wait()
            except TimeoutError:
                return False
            # The loop may have looked at the spool before our last append committed.
            if await asyncio.to_thread(self.spool.depth) == 0:
                return True
        return False

    async def _wait_wake(self, at_most_s: float) -> None:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancel that
        # arrives in the same loop turn as the wake, and the task then never stops.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(at_most_s):
                await self._wake.wait()
        self._wake.clear()

    async def ship_once(self, client: httpx.AsyncClient) -> None:
        """One round of the loop in the module docstring."""
        # 1. Anything to send?
        if self._still_empty():
            await self._wait_wake(self._idle_wait_s())
            return
        wakes = self._wakes
        stamp = self._spool_stamp()  # before the read: a write after it changes the stamp
        stats = await asyncio.to_thread(self.spool.stats)
        self.spool_reads += 1
        if stats.depth == 0:
            if wakes == self._wakes:  # no event was spooled while the spool was read
                self._empty_stamp, self._empty_at = stamp, self._clock()
            self._pending_since = None
            self._limit = self.settings.batch_max_events  # a drained spool resets splitting
            self._drained.set()
            await self._wait_wake(self._idle_wait_s())
            return
        self._empty_stamp = None
        self._drained.clear()
        # 2. Let a partial batch fill for up to batch_max_age_s.
        now = self._clock()
        if self._pending_since is None:
            self._pending_since = now
        full = stats.depth >= self._limit or stats.bytes >= self.settings.batch_max_bytes
        remaining = self._pending_since + self.settings.batch_max_age_s - now
        if not (full or self._flushing) and remaining > 0:
            await self._wait_wake(remaining)
            return
        # 3. Spread reconnecting agents out before a backlog drains.
        if self._after_outage and stats.depth > self._limit and not self._flushing:
            self._after_outage = False
            await self._sleep(self._rng() * self.settings.drain_start_jitter_s)
        # 4. Read the oldest events and respect the drain rate.
        rows = await asyncio.to_thread(self.spool.batch, self._limit, self.settings.batch_max_bytes)
        if not rows:
            return
        await self.bucket.take(len(rows))
        # 5. Send and act on the answer.
        await self._send(client, rows)

    async def _send(self, client: httpx.AsyncClient, rows: list[tuple[str, int, bytes]]) -> None:
        import httpx

        from agent.collector_http import IDEMPOTENT

        head = (
            f'{{"agent_id":"{self.credentials.agent_id}",'
            f'"sent_at":"{datetime.now(UTC).isoformat()}","events":['
        ).encode()
        body = head + b",".join(row[2] for row in rows) + b"]}"
        compressed = await asyncio.to_thread(gzip.compress, body, 6)
        self._path_changed.clear()  # only a change from now on can explain this send's failure
        try:
            response = await client.post(
                "/api/v1/events",
                content=compressed,
                headers={
                    "Authorization": self.credentials.authorization,
                    "Content-Type": "application/json",
                    "Content-Encoding": "gzip",
                    # Answer fields an older agent's IngestResult would refuse, asked for by name.
                    ACCEPTS_HEADER: "capture_orders",
                },
                extensions={IDEMPOTENT: True},  # ingest deduplicates by event id
            )
        except httpx.HTTPError as exc:
            await self._back_off(f"cannot reach the collector: {type(exc).__name__}: {exc}")
            return
        await self._handle(response, rows, client)

    async def _handle(
        self, response: httpx.Response, rows: list[tuple[str, int, bytes]],
        client: httpx.AsyncClient,
    ) -> None:
        """Act on the collector's answer, per the agreed API contract."""
        status = response.status_code
        error = _error_body(response)
        code = error.error if error else f"http_{status}"
        detail = f"{status} {code}: {error.detail}" if error else f"HTTP {status}"
        if status == 200:
            await self._acknowledged(response, rows)
        elif status in (401, 403):
            self._stop(code, detail)
            await self._record("stopped", detail)
        elif status == 413:
            await self._split_or_quarantine(rows, f"{code}: the collector refuses it as too large")
        elif status == 422:
            await self._quarantine_invalid(rows, error)
        elif status in (429, 503):
            delay = retry_after_seconds(response.headers.get("Retry-After"))
            if delay is None:
                await self._back_off(f"collector busy: {detail}")
            else:
                # A misconfigured or hostile answer must not park the agent for days.
                delay = min(delay, self.settings.backoff_max_s)
                self._after_outage = True
                log.info("collector asks to retry later", status=status, retry_after_s=delay)
                await self._record("retrying", f"{detail}; Retry-After {delay:g} s")
                await self._sleep(delay)
        elif status >= 500:
            await self._server_error(client, rows, detail)
        else:
            # 400, 415 and unexpected codes: a bug on one side; keep the events and retry slowly.
            await self._back_off(f"collector refused the batch: {detail}")

    async def _acknowledged(
        self, response: httpx.Response, rows: list[tuple[str, int, bytes]]
    ) -> None:
        try:
            result = IngestResult.model_validate_json(response.content)
        except ValidationError:
            await self._back_off("collector answered 200 without a valid IngestResult")
            return
        acked = {str(i) for i in (*result.accepted, *result.duplicates)}
        summary = f"ok: {len(result.accepted)} accepted, {len(result.duplicates)} duplicates"
        removed = await asyncio.to_thread(self.spool.ack, acked, summary)
        if self._on_policy_hint is not None:
            self._on_policy_hint(result.policy_version)
        if self._on_capture_orders is not None and result.capture_orders:
            self._on_capture_orders(list(result.capture_orders))
        if self._on_isolation_hint is not None:
            self._on_isolation_hint(result.isolation_sequence)
        if self._on_release_hint is not None:
            self._on_release_hint(result.release_sequence)
        self.backoff.reset()
        self._server_errors = 0
        self._after_outage = False
        self.batches_sent += 1
        left = len({row[0] for row in rows} - acked)
        if left:
            log.warning("collector left events unacknowledged; resending them", count=left)
        log.debug("batch shipped", events=len(rows), acknowledged=removed)

    async def _server_error(
        self, client: httpx.AsyncClient, rows: list[tuple[str, int, bytes]], detail: str
    ) -> None:
        """A 5xx other than 503: retry; hunt for a poisoned event only when it repeats while
        the collector is healthy (module docstring)."""
        self._server_errors += 1
        if self._server_errors < SERVER_ERRORS_BEFORE_SPLIT:
            await self._back_off(f"collector failed on the batch: {detail}")
            return
        if not await self._collector_healthy(client):
            await self._back_off(f"collector failed on the batch and is not healthy: {detail}")
            return
        await self._split_or_quarantine(
            rows, f"collector_failed: it fails to store this event ({detail})")
        if len(rows) == 1:  # the poisoned event is set aside: full batches again
            self._server_errors = 0
            self._limit = self.settings.batch_max_events

    async def _collector_healthy(self, client: httpx.AsyncClient) -> bool:
        """True when ``/healthz`` answers 200: the collector and its database are up."""
        import httpx

        # A server may close the connection after its 500; the first try can meet that
        # dead keep-alive connection, so a protocol error earns one more try.
        for attempt in (1, 2):
            try:
                response = await client.get("/healthz")
            except httpx.RemoteProtocolError as exc:
                if attempt == 1:
                    continue
                error = f"{type(exc).__name__}: {exc}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    return True
                error = f"HTTP {response.status_code}"
            log.info("collector health check failed; its events wait", error=error)
            return False
        return False

    async def _split_or_quarantine(self, rows: list[tuple[str, int, bytes]], reason: str) -> None:
        if len(rows) > 1:
            self._limit = max(1, len(rows) // 2)
            log.info("collector refused a batch; sending smaller ones to isolate the event",
                     batch=self._limit, reason=reason)
            return
        await asyncio.to_thread(self.spool.quarantine, [rows[0][0]], reason)
        log.warning("event quarantined", id=rows[0][0], seq=rows[0][1], reason=reason)
        await self._record("quarantined", f"seq {rows[0][1]}: {reason}")

    async def _quarantine_invalid(
        self, rows: list[tuple[str, int, bytes]], error: ErrorBody | None
    ) -> None:
        items = error.errors if error and error.errors else []
        stored_max = max((int(item["max_seq"]) for item in items
                          if isinstance(item.get("max_seq"), int)), default=None)
        renumbered = 0
        if stored_max is not None:
            renumbered = await asyncio.to_thread(self.spool.renumber_above, stored_max)
        if renumbered:
            # The collector holds these seqs under other ids: this spool restarted its
            # numbering. Renumbered above them, the same events go again at once.
            log.warning("collector already holds these sequence numbers; renumbered the "
                        "waiting events after them", after_seq=stored_max)
            return
        reasons: dict[int, str] = {}
        for item in items:
            index = item.get("index")
            if isinstance(index, int) and 0 <= index < len(rows):
                loc = ".".join(str(p) for p in item.get("loc") or ())
                reasons[index] = f"invalid_batch: {loc}: {item.get('msg', '')}"
        if not reasons:
            # No usable indexes: halve until the bad event is alone, then quarantine it.
            detail = error.detail if error else "no detail"
            await self._split_or_quarantine(rows, f"invalid_batch: {detail}")
            return
        for index, reason in sorted(reasons.items()):
            await asyncio.to_thread(self.spool.quarantine, [rows[index][0]], reason)
        log.warning(
            "collector refused invalid events; quarantined them and shipping the rest",
            count=len(reasons),
            seqs=[rows[i][1] for i in sorted(reasons)],
        )
        await self._record("quarantined", f"{len(reasons)} invalid event(s) quarantined")

    async def _back_off(self, reason: str) -> None:
        delay = self.backoff.next_delay()
        self._after_outage = True
        log.warning("shipping failed; will retry", reason=reason, retry_in_s=round(delay, 2))
        await self._record("retrying", reason)
        # A route change may have ended the outage: retry then instead of waiting it out.
        sleeping = asyncio.ensure_future(self._sleep(delay))
        changed = asyncio.ensure_future(self._path_changed.wait())
        try:
            await asyncio.wait({sleeping, changed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeping.cancel()
            changed.cancel()

    def _stop(self, code: str, detail: str) -> None:
        if code == "agent_mismatch":
            advice = "the credentials do not match the events' agent; re-enroll this agent"
        elif code == "agent_superseded":
            advice = (
                "this host enrolled again and the new identity replaced this one; stop this copy "
                "of the agent. If the host was not re-imaged, tell the security team: another "
                "machine may have claimed this host's identity"
            )
        else:
            advice = (
                "re-enroll: courtguard-agent enroll --collector URL --token NEW_TOKEN --ca CA.pem, "
                "then restart the agent"
            )
        self.stopped_reason = f"{detail}; {advice}"
        log.error(
            f"collector refused this agent ({code}): shipping stopped, events stay in the spool; "
            f"{advice}",
            status=detail,
        )

    async def _record(self, result: str, error: str | None) -> None:
        await asyncio.to_thread(self.spool.record_ship, result, error)


def _error_body(response: httpx.Response) -> ErrorBody | None:
    if response.status_code < 400:
        return None
    try:
        return ErrorBody.model_validate_json(response.content)
    except ValidationError:
        return None
