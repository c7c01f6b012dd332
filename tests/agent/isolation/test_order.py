"""Isolation orders: verified before parsed, for this agent only, never replayed or expired."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from agent.errors import OrderRejected
from agent.isolation.order import open_order, parse_order
from agent.testing import PolicySigner, isolation_order

AGENT = uuid.UUID("0b7d6f52-4a55-4e43-9c0e-2d2b5d0f3a11")
NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["ed25519", "sm2"])
def signer(request: pytest.FixtureRequest) -> PolicySigner:
    return PolicySigner(request.param)


def _open(signer: PolicySigner, body: bytes, signature: str, accepted: int | None = None,
          now: datetime = NOW, agent: uuid.UUID = AGENT) -> object:
    return open_order(body, signature, signer.public_key, agent_id=agent,
                      accepted_sequence=accepted, now=now)


def test_a_signed_order_for_this_agent_opens(signer: PolicySigner) -> None:
    """A good order opens with what the collector said, allow-list included."""
    body, signature = isolation_order(signer, AGENT, 3, issued_at=NOW, allow=["198.18.5.0/24"],
                                      resolvers=["198.18.0.53"])
    order = parse_order(body)
    assert _open(signer, body, signature, accepted=2) == order
    assert order.action == "isolate" and order.sequence == 3
    assert [str(n) for n in order.allow_networks()] == ["198.18.5.0/24"]
    assert order.expires_at == NOW + timedelta(minutes=60)


def test_an_unsigned_order_is_refused(signer: PolicySigner) -> None:
    body, _ = isolation_order(signer, AGENT, 1, issued_at=NOW)
    with pytest.raises(OrderRejected) as refused:
        _open(signer, body, "")
    assert refused.value.code == "bad_signature"


def test_an_order_signed_by_another_key_is_refused(signer: PolicySigner) -> None:
    body, signature = isolation_order(PolicySigner(signer.algorithm), AGENT, 1, issued_at=NOW)
    with pytest.raises(OrderRejected) as refused:
        _open(signer, body, signature)
    assert refused.value.code == "bad_signature"


def test_an_edited_order_is_refused(signer: PolicySigner) -> None:
    """Lengthening the isolation after signing breaks the signature."""
    body, signature = isolation_order(signer, AGENT, 1, issued_at=NOW)
    edited = body.replace(b'"expires_at":"2026-12-07T10:00:00Z"',
                          b'"expires_at":"2026-12-08T10:00:00Z"')
    assert edited != body
    with pytest.raises(OrderRejected) as refused:
        _open(signer, edited, signature)
    assert refused.value.code == "bad_signature"


def test_an_order_for_another_agent_is_refused(signer: PolicySigner) -> None:
    body, signature = isolation_order(signer, uuid.uuid4(), 1, issued_at=NOW)
    with pytest.raises(OrderRejected) as refused:
        _open(signer, body, signature)
    assert refused.value.code == "other_agent"


@pytest.mark.parametrize("accepted", [5, 6])
def test_an_order_not_above_the_accepted_sequence_is_a_replay(
    signer: PolicySigner, accepted: int
) -> None:
    body, signature = isolation_order(signer, AGENT, 5, issued_at=NOW)
    with pytest.raises(OrderRejected) as refused:
        _open(signer, body, signature, accepted=accepted)
    assert refused.value.code == "replayed"


def test_an_expired_isolate_order_is_refused(signer: PolicySigner) -> None:
    body, signature = isolation_order(signer, AGENT, 1, issued_at=NOW - timedelta(hours=2))
    with pytest.raises(OrderRejected) as refused:
        _open(signer, body, signature)
    assert refused.value.code == "expired"


def test_a_lift_order_never_expires(signer: PolicySigner) -> None:
    """A lift carries no expiry: however late it arrives, it lifts."""
    body, signature = isolation_order(signer, AGENT, 2, action="lift",
                                      issued_at=NOW - timedelta(days=30))
    order = parse_order(body)
    assert order.expires_at is None
    assert _open(signer, body, signature, accepted=1) == order


def test_bytes_that_are_no_order_are_malformed(signer: PolicySigner) -> None:
    body = b'{"format":"courtguard-isolation-order/1"}'
    with pytest.raises(OrderRejected) as refused:
        _open(signer, body, signer.sign(body))
    assert refused.value.code == "malformed"
