"""The signed isolation order (一键隔离): one canonical byte string, its signature, its checks.

The collector signs an order with the policy signing key (Ed25519 or SM2, the
key agents pinned at enrollment: ``agent.signing``); the agent, in this order:

1. verifies the signature over the exact bytes it received, before parsing;
2. parses the bytes as an ``IsolationOrder``;
3. refuses an order for another agent, an order whose sequence is not above
   the highest it has accepted (a replay, or an older order arriving late),
   and an ``isolate`` order that has already expired.

An order is self-contained: an ``isolate`` order carries the networks and
resolvers the host may still reach (taken from the ``networks`` policy when the
collector signed it), so a host isolated before a reboot is isolated the same
way after it, whatever policy it starts on. The collector's own addresses
come from the agent's enrollment (what it ships to), never from the order.
This module knows nothing of HTTP or nftables.
"""

from __future__ import annotations

import ipaddress
import uuid
from datetime import datetime
from typing import Annotated, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from agent.errors import OrderRejected
from agent.policy.bundle import canonical_bytes
from agent.signing import PublicKey, SignatureMismatch

ORDER_FORMAT: Final = "courtguard-isolation-order/1"
#: An order is a few hundred bytes; anything this large is refused before its signature is checked.
MAX_ORDER_BYTES: Final = 64 * 1024
#: The longest isolation one order may ask for (7 days); a longer one is a new order.
MAX_MINUTES: Final = 7 * 24 * 60

Network = Annotated[str, StringConstraints(max_length=64)]


class IsolationOrder(BaseModel):
    """What the signed bytes say: isolate this agent until a time, or lift its isolation."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    format: Literal["courtguard-isolation-order/1"]
    order_id: uuid.UUID
    #: Strictly increasing per collector store: the agent refuses one not above what it accepted.
    sequence: int = Field(ge=1)
    agent_id: uuid.UUID
    #: The collector's isolation record this order belongs to (isolate and its lift share it).
    isolation_id: int = Field(ge=1)
    action: Literal["isolate", "lift"]
    issued_at: AwareDatetime
    #: When an ``isolate`` order ends by itself; None for ``lift``.
    expires_at: AwareDatetime | None = None
    reason: Annotated[str, StringConstraints(max_length=500)]
    requested_by: Annotated[str, StringConstraints(max_length=100)]
    approved_by: Annotated[str, StringConstraints(max_length=100)] | None = None
    #: CIDRs the isolated host may still reach (policy ``isolation.allow``).
    allow: list[Network] = Field(default_factory=list, max_length=1024)
    #: Intranet resolvers (policy ``resolvers``): DNS to them passes.
    resolvers: list[Network] = Field(default_factory=list, max_length=256)

    def allow_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(n, strict=False) for n in self.allow]

    def resolver_addresses(self) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        return [ipaddress.ip_address(a) for a in self.resolvers]

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


def build_order_bytes(
    *,
    order_id: uuid.UUID,
    sequence: int,
    agent_id: uuid.UUID,
    isolation_id: int,
    action: str,
    issued_at: datetime,
    expires_at: datetime | None,
    reason: str,
    requested_by: str,
    approved_by: str | None,
    allow: list[str],
    resolvers: list[str],
) -> bytes:
    """The canonical bytes the collector signs (validated first, so the agent can read them)."""
    order = IsolationOrder.model_validate({
        "format": ORDER_FORMAT, "order_id": order_id, "sequence": sequence,
        "agent_id": agent_id, "isolation_id": isolation_id, "action": action,
        "issued_at": issued_at, "expires_at": expires_at if action == "isolate" else None,
        "reason": reason, "requested_by": requested_by, "approved_by": approved_by,
        "allow": allow, "resolvers": resolvers,
    })
    return canonical_bytes(order.model_dump(mode="json"))


def parse_order(body: bytes) -> IsolationOrder:
    """The order the bytes say, unverified; OrderRejected("malformed") when they say none."""
    try:
        order = IsolationOrder.model_validate_json(body)
        order.allow_networks()
        order.resolver_addresses()
    except (ValidationError, ValueError) as exc:
        raise OrderRejected("malformed", f"not an isolation order: {str(exc)[:300]}") from None
    if order.action == "isolate" and order.expires_at is None:
        raise OrderRejected("malformed", "an isolate order without expires_at")
    return order


def open_order(
    body: bytes,
    signature: str,
    public_key: str,
    *,
    agent_id: uuid.UUID,
    accepted_sequence: int | None,
    now: datetime,
) -> IsolationOrder:
    """Verify, parse and judge one order (see the module docstring); OrderRejected otherwise."""
    if len(body) > MAX_ORDER_BYTES:
        raise OrderRejected("malformed", f"order larger than {MAX_ORDER_BYTES} bytes")
    if not signature:
        raise OrderRejected("bad_signature", "the order carries no signature")
    try:
        PublicKey.parse(public_key).verify(body, signature)
    except SignatureMismatch as exc:
        raise OrderRejected("bad_signature", exc.reason) from None
    order = parse_order(body)
    if order.agent_id != agent_id:
        raise OrderRejected("other_agent", f"the order is for agent {order.agent_id}")
    if accepted_sequence is not None and order.sequence <= accepted_sequence:
        raise OrderRejected(
            "replayed",
            f"order sequence {order.sequence} is not above the accepted {accepted_sequence}",
        )
    if order.action == "isolate" and order.expired(now):
        raise OrderRejected("expired", f"the order expired at {order.expires_at}")
    return order
