"""The isolation keeper: carries out good orders, keeps them across restarts, ends them on time."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.events import Finding
from agent.isolation.keeper import IsolationKeeper, order_path
from agent.testing import PolicySigner, RecordingEnforcer, isolation_order

AGENT = uuid.UUID("0b7d6f52-4a55-4e43-9c0e-2d2b5d0f3a11")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _keeper(tmp_path: Path, signer: PolicySigner, enforcer: RecordingEnforcer, clock: Clock,
            emitted: list[Finding]) -> IsolationKeeper:
    async def emit(finding: Finding) -> None:
        emitted.append(finding)

    return IsolationKeeper(data_dir=tmp_path, public_key=signer.public_key, agent_id=AGENT,
                           enforcer=enforcer, emit=emit, clock=clock, interval_s=60)


@pytest.fixture
def signer() -> PolicySigner:
    return PolicySigner()


def test_a_good_order_is_stored_then_applied_and_reported(
    tmp_path: Path, signer: PolicySigner
) -> None:
    enforcer, clock, emitted = RecordingEnforcer(), Clock(), []
    keeper = _keeper(tmp_path, signer, enforcer, clock, emitted)
    body, signature = isolation_order(signer, AGENT, 1, issued_at=clock.now)
    asyncio.run(keeper.receive(body, signature))
    assert enforcer.table_present and keeper.isolated
    assert order_path(tmp_path).read_bytes() == signature.encode() + b"\n" + body
    assert [f.kind for f in emitted] == ["outreach.isolation_applied"]
    assert emitted[0].evidence["cause"] == "order"
    assert emitted[0].evidence["sequence"] == 1


def test_a_replayed_order_is_refused_once_and_changes_nothing(
    tmp_path: Path, signer: PolicySigner
) -> None:
    """After a lift (sequence 2), the old isolate order (1) cannot isolate again."""
    enforcer, clock, emitted = RecordingEnforcer(), Clock(), []
    keeper = _keeper(tmp_path, signer, enforcer, clock, emitted)
    isolate = isolation_order(signer, AGENT, 1, issued_at=clock.now)
    lift = isolation_order(signer, AGENT, 2, action="lift", issued_at=clock.now)

    async def scenario() -> None:
        await keeper.receive(*isolate)
        await keeper.receive(*lift)
        await keeper.receive(*isolate)
        await keeper.receive(*isolate)

    asyncio.run(scenario())
    assert not enforcer.table_present
    assert [f.kind for f in emitted] == ["outreach.isolation_applied",
                                         "outreach.isolation_lifted",
                                         "outreach.isolation_refused"]
    assert emitted[-1].evidence["reason_code"] == "replayed"


def test_the_order_in_force_fetched_again_is_not_a_refusal(
    tmp_path: Path, signer: PolicySigner
) -> None:
    enforcer, clock, emitted = RecordingEnforcer(), Clock(), []
    keeper = _keeper(tmp_path, signer, enforcer, clock, emitted)
    isolate = isolation_order(signer, AGENT, 1, issued_at=clock.now)

    async def scenario() -> None:
        await keeper.receive(*isolate)
        await keeper.receive(*isolate)

    asyncio.run(scenario())
    assert [f.kind for f in emitted] == ["outreach.isolation_applied"]


def test_a_restart_reapplies_an_isolation_still_in_force(
    tmp_path: Path, signer: PolicySigner
) -> None:
    """After a reboot the kernel has no table: the stored order puts it back."""
    clock, emitted = Clock(), []
    first = _keeper(tmp_path, signer, RecordingEnforcer(), clock, emitted)
    asyncio.run(first.receive(*isolation_order(signer, AGENT, 4, issued_at=clock.now)))
    rebooted = RecordingEnforcer(present=False)
    second = _keeper(tmp_path, signer, rebooted, clock, emitted)
    asyncio.run(second.restore())
    assert rebooted.table_present
    assert second.accepted_sequence == 4
    assert emitted[-1].kind == "outreach.isolation_applied"
    assert emitted[-1].evidence["cause"] == "restart"


def test_a_restart_after_expiry_removes_the_table_and_reports_the_lift(
    tmp_path: Path, signer: PolicySigner
) -> None:
    clock, emitted = Clock(), []
    first = _keeper(tmp_path, signer, RecordingEnforcer(), clock, emitted)
    asyncio.run(first.receive(*isolation_order(signer, AGENT, 1, issued_at=clock.now,
                                               minutes=5)))
    clock.now += timedelta(minutes=6)
    left_over = RecordingEnforcer(present=True)
    second = _keeper(tmp_path, signer, left_over, clock, emitted)
    asyncio.run(second.restore())
    assert left_over.calls == ["remove"]
    assert emitted[-1].kind == "outreach.isolation_lifted"
    assert emitted[-1].evidence["cause"] == "expired"
    assert second.accepted_sequence == 1  # still the replay floor


def test_a_restart_keeps_the_replay_floor(tmp_path: Path, signer: PolicySigner) -> None:
    clock, emitted = Clock(), []
    first = _keeper(tmp_path, signer, RecordingEnforcer(), clock, emitted)
    old = isolation_order(signer, AGENT, 1, issued_at=clock.now)
    asyncio.run(first.receive(*old))
    asyncio.run(first.receive(*isolation_order(signer, AGENT, 2, action="lift",
                                                issued_at=clock.now)))
    enforcer = RecordingEnforcer()
    second = _keeper(tmp_path, signer, enforcer, clock, emitted)
    asyncio.run(second.restore())
    asyncio.run(second.receive(*old))
    assert not enforcer.table_present
    assert emitted[-1].evidence["reason_code"] == "replayed"


def test_an_isolation_ends_by_itself_at_its_time(tmp_path: Path, signer: PolicySigner) -> None:
    enforcer, clock, emitted = RecordingEnforcer(), Clock(), []
    keeper = _keeper(tmp_path, signer, enforcer, clock, emitted)
    asyncio.run(keeper.receive(*isolation_order(signer, AGENT, 1, issued_at=clock.now,
                                                minutes=1)))
    asyncio.run(keeper.expire_if_due())
    assert enforcer.table_present
    clock.now += timedelta(minutes=1)
    asyncio.run(keeper.expire_if_due())
    assert not enforcer.table_present
    assert emitted[-1].kind == "outreach.isolation_lifted"
    assert emitted[-1].evidence["cause"] == "expired"


def test_a_hint_above_the_accepted_sequence_wakes_the_keeper(
    tmp_path: Path, signer: PolicySigner
) -> None:
    clock, emitted = Clock(), []
    keeper = _keeper(tmp_path, signer, RecordingEnforcer(), clock, emitted)

    async def scenario() -> list[bool]:
        await keeper.receive(*isolation_order(signer, AGENT, 3, issued_at=clock.now))
        woken = []
        for hint in (None, 2, 3, 4):
            keeper._wake.clear()
            keeper.hint(hint)
            woken.append(keeper._wake.is_set())
        return woken

    assert asyncio.run(scenario()) == [False, False, False, True]


def test_a_stored_order_with_a_bad_signature_is_not_used(
    tmp_path: Path, signer: PolicySigner
) -> None:
    body, _ = isolation_order(signer, AGENT, 1)
    order_path(tmp_path).write_bytes(PolicySigner().sign(body).encode() + b"\n" + body)
    enforcer, emitted = RecordingEnforcer(), []
    keeper = _keeper(tmp_path, signer, enforcer, Clock(), emitted)
    asyncio.run(keeper.restore())
    assert keeper.accepted is None and not enforcer.table_present and emitted == []


def test_an_answer_without_news_confirms_the_state(tmp_path: Path, signer: PolicySigner) -> None:
    """Ingest answers naming no newer order spare the timed fetch; a newer one never does."""
    keeper = _keeper(tmp_path, signer, RecordingEnforcer(), Clock(), [])
    assert not keeper.confirmed_recently()
    keeper.hint(None)
    assert keeper.confirmed_recently() and not keeper._wake.is_set()
    keeper.hint(1)
    assert keeper._wake.is_set()


def test_a_hint_already_fetched_does_not_fetch_again(
    tmp_path: Path, signer: PolicySigner
) -> None:
    """A replayed row keeps being hinted; one fetch judges it, later answers do not re-fetch."""
    import httpx

    clock, emitted = Clock(), []
    keeper = _keeper(tmp_path, signer, RecordingEnforcer(), clock, emitted)
    old = isolation_order(signer, AGENT, 1, issued_at=clock.now)
    lift = isolation_order(signer, AGENT, 2, action="lift", issued_at=clock.now)

    def serve(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=old[0], headers={"X-Courtguard-Signature": old[1]})

    async def scenario() -> None:
        await keeper.receive(*old)
        await keeper.receive(*lift)
        keeper.hint(3)  # a copy of the old order stored under sequence 3
        assert keeper._wake.is_set()
        async with httpx.AsyncClient(transport=httpx.MockTransport(serve),
                                     base_url="http://collector.test") as client:
            await keeper.fetch_once(client, "Bearer x")
        keeper._wake.clear()
        keeper.hint(3)
        assert not keeper._wake.is_set()
        keeper.hint(4)
        assert keeper._wake.is_set()

    asyncio.run(scenario())
    assert [f.kind for f in emitted][-1] == "outreach.isolation_refused"


def test_a_stored_lift_not_yet_carried_out_is_finished_at_start(
    tmp_path: Path, signer: PolicySigner
) -> None:
    """A crash between storing a lift and removing the table: the next start removes it."""
    clock, emitted = Clock(), []
    lift = isolation_order(signer, AGENT, 2, action="lift", issued_at=clock.now)
    order_path(tmp_path).write_bytes(lift[1].encode() + b"\n" + lift[0])
    left_over = RecordingEnforcer(present=True)
    keeper = _keeper(tmp_path, signer, left_over, clock, emitted)
    asyncio.run(keeper.restore())
    assert left_over.calls == ["remove"]
    assert emitted[-1].evidence["cause"] == "order"
