"""Carry out signed isolation orders, keep the last one on disk, and end it on time.

1. At start (``restore``) the stored order, ``<data_dir>/isolation-order.signed``
   (the base64 signature, a newline, the exact signed bytes), is verified
   again; an ``isolate`` order still running is re-applied (after a reboot the
   kernel has no table), an expired or lifted one leaves no table behind;
2. every ingest answer names the newest order's sequence for this agent
   (``IngestResult.isolation_sequence``): a sequence above the accepted one
   wakes the keeper, which fetches ``GET /api/v1/isolation`` (also every
   ``interval_s``, in case answers are not coming);
3. the order is verified (``agent.isolation.order``: signature, agent,
   sequence above the accepted one, not expired), stored, then carried out:
   ``isolate`` loads the table (``agent.isolation.table``), ``lift`` removes it;
4. an ``isolate`` order ends by itself at ``expires_at``: the table goes and
   the lift is reported, without the collector.

Each step is reported as an event (``outreach.isolation_applied``,
``outreach.isolation_lifted``, ``outreach.isolation_refused``) with the
order's id. The stored order is also the replay floor: an order whose
sequence is not above it is refused, across restarts.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol

import structlog

from agent.detectors.outreach.readers.kernel_filter import FilterError
from agent.errors import OrderRejected
from agent.events import Finding, IsolationEvidence, Severity
from agent.isolation import table
from agent.isolation.order import MAX_ORDER_BYTES, IsolationOrder, open_order, parse_order

if TYPE_CHECKING:
    import httpx

log = structlog.get_logger("courtguard.isolation")

ORDER_FILE: Final = "isolation-order.signed"
#: The shortest wait between two fetches a timer or hint can cause (a flood of hints is one fetch).
MIN_FETCH_GAP_S: Final = 0.2


class Enforcer(Protocol):
    """Where an order takes effect: the nftables table (``agent.isolation.table``)."""

    def apply(self, order: IsolationOrder) -> None: ...
    def remove(self) -> None: ...
    def present(self) -> bool: ...


class NftEnforcer:
    """The isolation table, with the collector's addresses resolved from the enrollment."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def apply(self, order: IsolationOrder) -> None:
        # The outreach table resolves the collector the same way; both must let it through.
        from agent.detectors.outreach.source import collector_addresses

        table.apply(table.plan_for(collector_addresses(self.data_dir), order.allow_networks(),
                                   order.resolver_addresses()))

    def remove(self) -> None:
        table.remove()

    def present(self) -> bool:
        return table.present()


def order_path(data_dir: Path) -> Path:
    return data_dir / ORDER_FILE


class IsolationKeeper:
    """Holds the accepted order and the table in step with it; see the module docstring."""

    def __init__(
        self,
        *,
        data_dir: Path,
        public_key: str,
        agent_id: uuid.UUID,
        enforcer: Enforcer,
        emit: Callable[[Finding], Awaitable[None]],
        clock: Callable[[], datetime],
        interval_s: float,
    ) -> None:
        self.data_dir = data_dir
        self.public_key = public_key
        self.agent_id = agent_id
        self.enforcer = enforcer
        self._emit = emit
        self._clock = clock
        self.interval_s = interval_s
        self.accepted: IsolationOrder | None = None
        self.fetches = 0
        self._wake = asyncio.Event()
        self._refused: set[str] = set()  # digests of orders already reported as refused
        self._confirmed_at: float | None = None
        self._hinted = 0  # the highest sequence an ingest answer named
        self._fetched_hint = 0  # the highest hinted sequence a fetch has answered
        self.skipped = 0

    @property
    def accepted_sequence(self) -> int | None:
        return None if self.accepted is None else self.accepted.sequence

    @property
    def isolated(self) -> bool:
        order = self.accepted
        return order is not None and order.action == "isolate" and not order.expired(self._clock())

    # -- start -----------------------------------------------------------------

    async def restore(self) -> None:
        """Bring the kernel in step with the stored order (step 1)."""
        stored = await asyncio.to_thread(self._read_stored)
        present = await asyncio.to_thread(self.enforcer.present)
        self.accepted = stored
        if stored is not None and self.isolated:
            await self._isolate(stored, "restart")
        elif present:
            # An expired isolate order, a lift stored but not yet carried out, or no order.
            cause = "restart" if stored is None else (
                "expired" if stored.action == "isolate" else "order")
            await self._lift(stored, cause)

    def _read_stored(self) -> IsolationOrder | None:
        path = order_path(self.data_dir)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        signature, _, body = raw.partition(b"\n")
        try:
            # The stored order was accepted once; only its signature and owner are checked again.
            return open_order(body, signature.decode("ascii", "replace"), self.public_key,
                              agent_id=self.agent_id, accepted_sequence=None,
                              now=_never_expired(body, self._clock()))
        except OrderRejected as exc:
            log.error("the stored isolation order is unusable", path=str(path), error=exc.reason)
            return None

    # -- orders ----------------------------------------------------------------

    def hint(self, sequence: int | None) -> None:
        """The collector's newest order for this agent has ``sequence``: fetch if it is new.

        Any answer (None: no order at all) confirms the state for ``interval_s``,
        so an agent whose batches are acknowledged makes no timed fetch.
        """
        # An order already fetched for this hint and refused is not fetched on every answer.
        floor = max(self.accepted_sequence or 0, self._fetched_hint)
        if sequence is not None and sequence > floor:
            self._hinted = max(self._hinted, sequence)
            self._wake.set()
        else:
            self._confirmed_at = time.monotonic()

    def confirmed_recently(self) -> bool:
        return (self._confirmed_at is not None
                and time.monotonic() - self._confirmed_at < self.interval_s)

    async def fetch_once(self, client: httpx.AsyncClient, authorization: str) -> None:
        """Fetch the newest order and carry it out, or report why not (steps 2-3)."""
        import httpx

        self.fetches += 1
        hinted = self._hinted
        try:
            response = await client.get("/api/v1/isolation",
                                        headers={"Authorization": authorization})
        except httpx.HTTPError as exc:
            log.info("isolation order fetch failed", error=str(exc))
            return
        if response.status_code != 200:
            if response.status_code != 404:
                log.warning("isolation order fetch refused", status=response.status_code)
            return
        self._fetched_hint = max(self._fetched_hint, hinted)
        await self.receive(response.content, response.headers.get("X-Courtguard-Signature", ""))

    async def receive(self, body: bytes, signature: str) -> None:
        """Judge one order's bytes; carry it out when it is new and good."""
        digest = hashlib.sha256(body).hexdigest()
        try:
            order = open_order(body, signature, self.public_key, agent_id=self.agent_id,
                               accepted_sequence=self.accepted_sequence, now=self._clock())
        except OrderRejected as exc:
            if exc.code == "replayed" and self._is_accepted(body):
                return  # the order already in force, fetched again
            await self._refuse(exc, body, digest)
            return
        from agent.enrollment import write_private

        # Stored before carried out: a restart right after must know the new floor and state.
        await asyncio.to_thread(write_private, order_path(self.data_dir),
                                signature.encode() + b"\n" + body)
        self.accepted = order
        if order.action == "isolate":
            await self._isolate(order, "order")
        else:
            await self._lift(order, "order")

    def _is_accepted(self, body: bytes) -> bool:
        try:
            return self.accepted is not None and parse_order(body) == self.accepted
        except OrderRejected:
            return False

    async def _refuse(self, exc: OrderRejected, body: bytes, digest: str) -> None:
        if digest in self._refused:
            return
        if len(self._refused) > 1000:
            self._refused.clear()
        self._refused.add(digest)
        log.error("isolation order refused", reason_code=exc.code, reason=exc.reason)
        evidence: dict[str, object] = {"reason_code": exc.code, "error": exc.reason[:500],
                                       "sha256": digest, "ok": False}
        if exc.code != "bad_signature" and len(body) <= MAX_ORDER_BYTES:
            try:  # unverified bytes are not read for their claims
                claimed = parse_order(body)
                evidence.update(order_id=str(claimed.order_id), sequence=claimed.sequence,
                                isolation_id=claimed.isolation_id, action=claimed.action)
            except OrderRejected:
                pass
        await self._emit(Finding(
            kind="outreach.isolation_refused", severity=Severity.HIGH,
            summary=f"拒绝执行隔离指令：{_REFUSALS.get(exc.code, exc.code)}",
            evidence=IsolationEvidence.model_validate(evidence).model_dump(
                mode="json", exclude_none=True)))

    async def _isolate(self, order: IsolationOrder, cause: str) -> None:
        error = await self._enforce(self.enforcer.apply, order)
        until = order.expires_at.isoformat() if order.expires_at else "-"
        summary = (f"主机已按管理员指令隔离至 {until}" if error is None
                   else "主机隔离指令未能执行")
        await self._emit(Finding(
            kind="outreach.isolation_applied",
            severity=Severity.HIGH if error is None else Severity.CRITICAL,
            summary=summary,
            evidence=_evidence(order, cause, error).model_dump(mode="json", exclude_none=True)))

    async def _lift(self, order: IsolationOrder | None, cause: str) -> None:
        error = await self._enforce(lambda _order: self.enforcer.remove(), order)
        if cause == "expired":
            summary = "主机隔离到期，已自动解除"
        elif cause == "order":
            summary = "主机隔离已按管理员指令解除"
        else:
            summary = "已清除上次运行留下的隔离规则"
        if error is not None:
            summary = "主机隔离未能解除"
        await self._emit(Finding(
            kind="outreach.isolation_lifted",
            severity=Severity.MEDIUM if error is None else Severity.CRITICAL,
            summary=summary,
            evidence=_evidence(order, cause, error).model_dump(mode="json", exclude_none=True)))

    async def _enforce(
        self, action: Callable[[IsolationOrder], None], order: IsolationOrder | None
    ) -> str | None:
        try:
            await asyncio.to_thread(action, order)  # type: ignore[arg-type]  # remove ignores it
        except (FilterError, OSError) as exc:
            log.error("isolation table change failed", error=str(exc))
            return str(exc)[:500]
        return None

    # -- loop ------------------------------------------------------------------

    async def run(self, client: httpx.AsyncClient, authorization: str) -> None:
        """Fetch now, then on a hint or every ``interval_s``; lift at expiry (step 4).

        A timed fetch is skipped while ingest answers confirm there is nothing new.
        """
        woken = True
        while True:
            self._wake.clear()
            if woken or not self.confirmed_recently():
                await self.fetch_once(client, authorization)
            else:
                self.skipped += 1
            woken = await self.wait(self._next_wait())
            await self.expire_if_due()
            await asyncio.sleep(MIN_FETCH_GAP_S)

    def _next_wait(self) -> float:
        wait = self.interval_s
        order = self.accepted
        if order is not None and order.action == "isolate" and order.expires_at is not None:
            left = (order.expires_at - self._clock()).total_seconds()
            if left > -1:  # an order already past its time was lifted at start or below
                wait = min(wait, max(left, 0.0))
        return wait

    async def wait(self, seconds: float) -> bool:
        """Wait for a hint (True) or ``seconds`` (False)."""
        try:
            async with asyncio.timeout(seconds):  # wait_for can lose a cancel on 3.11
                await self._wake.wait()
        except TimeoutError:
            return False
        return True

    async def expire_if_due(self) -> None:
        order = self.accepted
        if (order is not None and order.action == "isolate" and order.expired(self._clock())
                and await asyncio.to_thread(self.enforcer.present)):
            await self._lift(order, "expired")


def _never_expired(body: bytes, now: datetime) -> datetime:
    """A time before the order's expiry: restore reads an expired order too (to lift it)."""
    try:
        order = parse_order(body)
    except OrderRejected:
        return now
    if order.expires_at is not None and order.expires_at <= now:
        return order.issued_at
    return now


def _evidence(order: IsolationOrder | None, cause: str, error: str | None) -> IsolationEvidence:
    if order is None:
        return IsolationEvidence(cause=cause, ok=error is None, error=error)  # type: ignore[arg-type]  # cause is one of the literals
    return IsolationEvidence.model_validate({
        "order_id": order.order_id, "sequence": order.sequence,
        "isolation_id": order.isolation_id, "action": order.action, "cause": cause,
        "expires_at": order.expires_at, "requested_by": order.requested_by,
        "approved_by": order.approved_by, "reason": order.reason,
        "ok": error is None, "error": error,
    })


_REFUSALS: Final = {
    "bad_signature": "签名无效或缺失",
    "malformed": "格式错误",
    "other_agent": "指令针对其他终端",
    "replayed": "指令重放或早于已执行的指令",
    "expired": "指令已过期",
}
