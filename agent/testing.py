"""Fakes for testing the agent and anything that talks to it, shipped with the package.

* ``FakeSource`` yields given observations, then idles like a real source (or
  fails, or is unavailable);
* ``FakeDetector`` turns each observation into one ``fake.observed`` finding,
  and crashes on a chosen observation;
* ``fake_spec`` and ``lacking_spec`` wrap them in ``DetectorSpec`` entries, the
  latter needing a capability this process does not hold;
* ``FakeCollector`` is an ``httpx.MockTransport`` handler that speaks the
  collector's API, records every batch and can be scripted;
* ``write_credentials`` enrolls a data dir with a ``FakeCollector`` offline;
* ``PolicySigner`` signs bundles as the collector does, and ``FakeCollector``
  serves the one in its ``policy`` slot on ``/api/v1/policy`` with ETags.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import httpx

from agent.capabilities import CAPABILITY_BITS, effective
from agent.detector import DetectorSpec, SourceContext, SourceUnavailable
from agent.enrollment import Credentials, save_credentials
from agent.events import EnrollResponse, Event, EventBatch, Finding, Severity
from agent.policy.models import AgentPolicy, PolicyDocument

#: Stands in for a privilege nobody holds when the test process holds every real one.
NEVER_HELD = "CAP_COURTGUARD_NEVER_HELD"


class FakeSource:
    """Yields the given observations, then waits until cancelled (or raises ``fail_with``)."""

    def __init__(
        self,
        observations: Iterable[Any] = (),
        *,
        interval_s: float = 0.0,
        fail_with: BaseException | None = None,
        unavailable: str | None = None,
    ) -> None:
        self._observations = list(observations)
        self._interval_s = interval_s
        self._fail_with = fail_with
        self._unavailable = unavailable

    async def observations(self) -> AsyncIterator[Any]:
        if self._unavailable is not None:
            raise SourceUnavailable(self._unavailable)
        for observation in self._observations:
            await asyncio.sleep(self._interval_s)
            yield observation
        if self._fail_with is not None:
            raise self._fail_with
        await asyncio.Event().wait()  # a real source runs until the daemon cancels it


class FakeDetector:
    """One ``fake.observed`` finding per observation; raises on ``crash_on``."""

    name: ClassVar[str] = "fake"
    policy_section: ClassVar[str] = "agent"
    description: ClassVar[str] = "Turns each observation into one finding, for tests."

    def __init__(
        self,
        *,
        crash_on: Any = None,
        severity: Severity = Severity.LOW,
        finalize_findings: Iterable[Finding] = (),
    ) -> None:
        self.crash_on = crash_on
        self.severity = severity
        self.finalize_findings = list(finalize_findings)
        self.seen: list[Any] = []
        self.finalized = 0

    def evaluate(self, observation: Any, policy: PolicyDocument, now: datetime) -> list[Finding]:
        if self.crash_on is not None and observation == self.crash_on:
            raise RuntimeError(f"fake detector crashed on {observation!r}")
        self.seen.append(observation)
        return [
            Finding(
                kind="fake.observed",
                severity=self.severity,
                summary=f"测试观测：{observation}",
                evidence={"observation": str(observation)},
                time=now,
            )
        ]

    def finalize(self, policy: PolicyDocument, now: datetime) -> list[Finding]:
        self.finalized += 1
        return list(self.finalize_findings)


def fake_spec(
    name: str = "fake",
    observations: Iterable[Any] = (),
    *,
    capabilities: Iterable[str] = (),
    runs_degraded: bool = False,
    crash_on: Any = None,
    fail_with: BaseException | None = None,
    unavailable: str | None = None,
    interval_s: float = 0.0,
    finalize_every_s: float = 10.0,
    detector: FakeDetector | None = None,
    policy_model: type[PolicyDocument] = AgentPolicy,
) -> DetectorSpec[Any, Any]:
    """A registry entry running ``FakeSource`` into ``FakeDetector`` (or the one passed)."""
    observed = list(observations)
    made = detector or FakeDetector(crash_on=crash_on)

    def make_source(context: SourceContext) -> FakeSource:
        return FakeSource(
            observed, interval_s=interval_s, fail_with=fail_with, unavailable=unavailable
        )

    return DetectorSpec(
        name=name,
        description="A fake detector for tests.",
        policy_section=policy_model.KIND,
        make_source=make_source,
        make_detector=lambda: made,
        policy_model=policy_model,
        capabilities=frozenset(capabilities),
        runs_degraded=runs_degraded,
        finalize_every_s=finalize_every_s,
    )


def lacking_capability(held: frozenset[str] | None = None) -> str:
    """A capability name this process does not hold (a made-up one if it holds them all)."""
    have = effective() if held is None else held
    for name in CAPABILITY_BITS:
        if name not in have:
            return name
    return NEVER_HELD


def lacking_spec(name: str = "needs_privilege", **kwargs: Any) -> DetectorSpec[Any, Any]:
    """A ``fake_spec`` that needs a capability the process lacks."""
    return fake_spec(name, capabilities=[lacking_capability()], **kwargs)


@dataclass
class Reply:
    """One scripted answer of ``FakeCollector``."""

    status: int
    error: str | None = None
    detail: str = ""
    errors: list[dict[str, Any]] | None = None
    retry_after: str | None = None
    body: Any = None


class PolicySigner:
    """A key that signs bundles exactly as ``policy publish`` does (Ed25519, or ``"sm2"``)."""

    def __init__(self, algorithm: str = "ed25519") -> None:
        from agent.signing import generate_signer

        self.algorithm = algorithm
        self._signer = generate_signer(algorithm)

    @property
    def public_key(self) -> str:
        """The policy-key text an agent pins (``agent.signing.PublicKey.text``)."""
        return self._signer.public_key.text

    def sign(self, body: bytes) -> str:
        return self._signer.sign(body)

    def bundle(
        self,
        documents: Mapping[str, PolicyDocument],
        version: int,
        group: str | None = None,
        note: str = "",
    ) -> SignedBundle:
        from agent.policy.bundle import build_bundle_bytes

        body = build_bundle_bytes(
            documents, version=version, group=group, created_at=datetime.now(UTC),
            author="tester", note=note,
        )
        return SignedBundle(body, self.sign(body), version)

    def raw_bundle(self, data: dict[str, Any]) -> SignedBundle:
        """Sign arbitrary bundle data (e.g. an invalid document that passed signing)."""
        from agent.policy.bundle import canonical_bytes

        body = canonical_bytes(data)
        return SignedBundle(body, self.sign(body), int(data.get("version", 0)))


@dataclass(frozen=True)
class SignedBundle:
    body: bytes
    signature: str
    version: int

    @property
    def etag(self) -> str:
        return f'"{self.version}-{hashlib.sha256(self.body).hexdigest()[:16]}"'


@dataclass
class FakeCollector:
    """Speaks ``/api/v1/enroll`` and ``/api/v1/events`` for ``httpx.MockTransport``.

    Unscripted batches are acknowledged in full (new ids as accepted, known
    ones as duplicates). ``then`` queues answers used before that default.
    """

    agent_id: uuid.UUID = field(default_factory=uuid.uuid4)
    secret: str = "s" * 40
    group: str = "default"
    max_batch_events: int | None = None
    script: deque[Reply] = field(default_factory=deque)
    requests: list[httpx.Request] = field(default_factory=list)
    batches: list[EventBatch] = field(default_factory=list)
    arrival_times: list[float] = field(default_factory=list)
    accepted: dict[uuid.UUID, Event] = field(default_factory=dict)
    #: What ``/api/v1/policy`` serves (None: 404 no_policy), and the group it says.
    policy: SignedBundle | None = None
    policy_key: str | None = None
    #: Sent as ``X-Courtguard-Signature-Algorithm`` with the bundle when set.
    signature_algorithm: str | None = None
    #: The version ``IngestResult.policy_version`` hints, if any.
    policy_hint: str | None = None
    #: When false, every request fails as if the collector were unreachable.
    reachable: bool = True
    #: What ``/healthz`` answers; None: 404, as if the collector had no health check.
    healthz: int | None = None
    policy_requests: list[httpx.Request] = field(default_factory=list)

    def then(self, status: int, **kwargs: Any) -> FakeCollector:
        self.script.append(Reply(status, **kwargs))
        return self

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    @property
    def events(self) -> list[Event]:
        """Every accepted event, in arrival order."""
        return list(self.accepted.values())

    def handle(self, request: httpx.Request) -> httpx.Response:
        if not self.reachable:
            raise httpx.ConnectError("collector unreachable (FakeCollector.reachable is false)")
        self.requests.append(request)
        if request.url.path == "/api/v1/enroll":
            return self._enroll(request)
        if request.url.path == "/api/v1/policy":
            return self._policy(request)
        if request.url.path == "/healthz" and self.healthz is not None:
            return httpx.Response(self.healthz, json={"status": "ok"})
        if request.url.path != "/api/v1/events":
            return _error(404, "not_found", request.url.path)
        if request.headers.get("Authorization") != f"Bearer {self.agent_id}:{self.secret}":
            return _error(401, "invalid_credentials", "unknown agent or wrong secret")
        batch = EventBatch.model_validate_json(gzip.decompress(request.content))
        self.batches.append(batch)
        self.arrival_times.append(time.monotonic())
        if self.script:
            reply = self.script.popleft()
            if reply.status != 200 or reply.body is not None:
                return _reply(reply)
        if self.max_batch_events is not None and len(batch.events) > self.max_batch_events:
            return _error(413, "batch_too_large", f"more than {self.max_batch_events} events")
        accepted: list[str] = []
        duplicates: list[str] = []
        for event in batch.events:
            (duplicates if event.id in self.accepted else accepted).append(str(event.id))
            self.accepted.setdefault(event.id, event)
        return httpx.Response(
            200,
            json={"accepted": accepted, "duplicates": duplicates,
                  "policy_version": self.policy_hint},
        )

    def _policy(self, request: httpx.Request) -> httpx.Response:
        self.policy_requests.append(request)
        if request.headers.get("Authorization") != f"Bearer {self.agent_id}:{self.secret}":
            return _error(401, "invalid_credentials", "unknown agent or wrong secret")
        if self.policy is None:
            return _error(404, "no_policy", "nothing published")
        headers = {"ETag": self.policy.etag, "X-Courtguard-Group": self.group}
        if request.headers.get("If-None-Match") == self.policy.etag:
            return httpx.Response(304, headers=headers)
        headers["X-Courtguard-Signature"] = self.policy.signature
        if self.signature_algorithm is not None:
            headers["X-Courtguard-Signature-Algorithm"] = self.signature_algorithm
        return httpx.Response(200, content=self.policy.body, headers=headers)

    def _enroll(self, request: httpx.Request) -> httpx.Response:
        if self.script:
            return _reply(self.script.popleft())
        answer = EnrollResponse(
            agent_id=self.agent_id, secret=self.secret, group=self.group,
            policy_key=self.policy_key,
        )
        return httpx.Response(201, content=answer.model_dump_json())


def _error(status: int, error: str, detail: str) -> httpx.Response:
    return httpx.Response(status, json={"error": error, "detail": detail})


def _reply(reply: Reply) -> httpx.Response:
    headers = {"Retry-After": reply.retry_after} if reply.retry_after is not None else {}
    if reply.body is not None:
        return httpx.Response(reply.status, content=json.dumps(reply.body), headers=headers)
    body: dict[str, Any] = {"error": reply.error or f"http_{reply.status}", "detail": reply.detail}
    if reply.errors is not None:
        body["errors"] = reply.errors
    return httpx.Response(reply.status, json=body, headers=headers)


def write_credentials(
    data_dir: Path, collector: FakeCollector, url: str = "http://collector.test"
) -> Credentials:
    """Store credentials for ``collector`` as enrollment would, without a request."""
    credentials = Credentials(
        collector_url=url,
        agent_id=collector.agent_id,
        secret=collector.secret,
        group=collector.group,
        enrolled_at=datetime.now(UTC),
        policy_key=collector.policy_key,
    )
    save_credentials(data_dir, credentials)
    return credentials


async def eventually(predicate: Callable[[], object], within_s: float = 5.0) -> None:
    """Wait until ``predicate()`` is truthy, checking every 10 ms; AssertionError after within_s."""
    for _ in range(max(1, int(within_s / 0.01))):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"condition not met within {within_s} s")


class RecordingEnforcer:
    """Stands in for the isolation table where only the keeper's decisions are tested.

    ``present`` is what the kernel would hold; ``calls`` lists ``apply:<order id>``
    and ``remove`` in order. The real table is tested in network namespaces.
    """

    def __init__(self, present: bool = False) -> None:
        self.table_present = present
        self.calls: list[str] = []
        self.applied: Any = None

    def apply(self, order: Any) -> None:
        self.calls.append(f"apply:{order.order_id}")
        self.applied = order
        self.table_present = True

    def remove(self) -> None:
        self.calls.append("remove")
        self.table_present = False

    def present(self) -> bool:
        return self.table_present


def isolation_order(
    signer: PolicySigner,
    agent_id: uuid.UUID,
    sequence: int,
    *,
    action: str = "isolate",
    minutes: float = 60,
    issued_at: datetime | None = None,
    allow: list[str] | None = None,
    resolvers: list[str] | None = None,
) -> tuple[bytes, str]:
    """A signed isolation order as the collector makes it: (body, signature)."""
    from datetime import timedelta

    from agent.isolation.order import build_order_bytes

    issued = issued_at or datetime.now(UTC)
    body = build_order_bytes(
        order_id=uuid.uuid4(), sequence=sequence, agent_id=agent_id, isolation_id=sequence,
        action=action, issued_at=issued, expires_at=issued + timedelta(minutes=minutes),
        reason="测试隔离", requested_by="admin-a", approved_by=None,
        allow=allow or [], resolvers=resolvers or [],
    )
    return body, signer.sign(body)
