"""The policy client refuses every forged, replayed, foreign or invalid bundle, with a reason."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.policy.bundle import BUNDLE_FORMAT
from agent.policy.client import (
    PolicyClient,
    Rejected,
    Verified,
    last_good_path,
    read_last_good,
)
from agent.policy.loader import load_policy_dir
from agent.testing import FakeCollector, PolicySigner, SignedBundle

REPO = Path(__file__).resolve().parents[3]
DOCUMENTS = load_policy_dir(REPO / "policies").documents
REQUIRED = frozenset({"agent"})


@pytest.fixture(params=["ed25519", "sm2"])
def signer(request: pytest.FixtureRequest) -> PolicySigner:
    """Every test here runs once with an Ed25519-pinned agent and once with an SM2-pinned one."""
    return PolicySigner(request.param)


@pytest.fixture
def collector(signer: PolicySigner) -> FakeCollector:
    return FakeCollector(policy_key=signer.public_key, group="court-a")


def fetch(client: PolicyClient, collector: FakeCollector) -> Any:
    async def once() -> Any:
        async with httpx.AsyncClient(
            base_url="http://collector.test", transport=collector.transport()
        ) as http:
            return await client.fetch_once(http, f"Bearer {collector.agent_id}:{collector.secret}")

    return asyncio.run(once())


def policy_client(tmp_path: Path, signer: PolicySigner, applied: Any = None) -> PolicyClient:
    return PolicyClient(data_dir=tmp_path, public_key=signer.public_key, group="court-a",
                        required=REQUIRED, interval_s=60, applied=applied)


def rejected(outcome: Any) -> str:
    assert isinstance(outcome, Rejected), outcome
    return outcome.evidence.reason_code


def test_good_bundle_verifies(tmp_path: Path, signer: PolicySigner,
                              collector: FakeCollector) -> None:
    """A bundle signed with the pinned key, for the agent's group, is verified and validated."""
    collector.policy = signer.bundle(DOCUMENTS, 3, group="court-a")
    outcome = fetch(policy_client(tmp_path, signer), collector)
    assert isinstance(outcome, Verified) and outcome.policies.version == "3"


def test_one_byte_changed_is_refused(tmp_path: Path, signer: PolicySigner,
                                     collector: FakeCollector) -> None:
    """Changing one byte of the signed bytes breaks the signature."""
    good = signer.bundle(DOCUMENTS, 3)
    body = good.body.replace(b'"version":3', b'"version":4')
    collector.policy = SignedBundle(body, good.signature, 4)
    outcome = fetch(policy_client(tmp_path, signer), collector)
    assert rejected(outcome) == "bad_signature"
    assert outcome.evidence.version is None  # unverified bytes are not believed


def test_signature_swapped_is_refused(tmp_path: Path, signer: PolicySigner,
                                      collector: FakeCollector) -> None:
    """A valid signature of another bundle does not cover this one."""
    other = signer.bundle(DOCUMENTS, 2)
    mine = signer.bundle(DOCUMENTS, 3)
    collector.policy = SignedBundle(mine.body, other.signature, 3)
    assert rejected(fetch(policy_client(tmp_path, signer), collector)) == "bad_signature"


def test_key_swapped_is_refused(tmp_path: Path, signer: PolicySigner,
                                collector: FakeCollector) -> None:
    """A bundle signed by any key but the pinned one (of the same algorithm) is refused."""
    collector.policy = PolicySigner(signer.algorithm).bundle(DOCUMENTS, 3)
    assert rejected(fetch(policy_client(tmp_path, signer), collector)) == "bad_signature"


def test_garbage_signature_is_refused(tmp_path: Path, signer: PolicySigner,
                                      collector: FakeCollector) -> None:
    """A missing or malformed signature header is a refusal, not a crash."""
    good = signer.bundle(DOCUMENTS, 3)
    collector.policy = SignedBundle(good.body, "not base64!", 3)
    assert rejected(fetch(policy_client(tmp_path, signer), collector)) == "bad_signature"


def other_algorithm(signer: PolicySigner) -> str:
    return "ed25519" if signer.algorithm == "sm2" else "sm2"


def test_bundle_signed_with_the_other_algorithm_is_refused(
    tmp_path: Path, signer: PolicySigner, collector: FakeCollector
) -> None:
    """An SM2-pinned agent refuses an Ed25519-signed bundle and an Ed25519-pinned agent an
    SM2-signed one, whether or not the sender admits the algorithm: no downgrade."""
    forger = PolicySigner(other_algorithm(signer))
    collector.policy = forger.bundle(DOCUMENTS, 3)
    outcome = fetch(policy_client(tmp_path, signer), collector)
    assert rejected(outcome) == "bad_signature"
    assert f"pinned {signer.algorithm} key" in outcome.evidence.reason
    collector.signature_algorithm = forger.algorithm
    outcome = fetch(policy_client(tmp_path, signer), collector)
    assert rejected(outcome) == "bad_signature"
    assert f"signed with '{forger.algorithm}'" in outcome.evidence.reason
    assert f"pinned at enrollment is {signer.algorithm}" in outcome.evidence.reason


def test_a_genuine_bundle_claimed_as_the_other_algorithm_is_refused(
    tmp_path: Path, signer: PolicySigner, collector: FakeCollector
) -> None:
    """The algorithm the collector names must be the pinned one; naming its own is fine."""
    collector.policy = signer.bundle(DOCUMENTS, 3)
    collector.signature_algorithm = signer.algorithm
    assert isinstance(fetch(policy_client(tmp_path, signer), collector), Verified)
    collector.signature_algorithm = other_algorithm(signer)
    assert rejected(fetch(policy_client(tmp_path, signer), collector)) == "bad_signature"


def test_replayed_older_bundle_is_refused(tmp_path: Path, signer: PolicySigner,
                                          collector: FakeCollector) -> None:
    """A validly signed version older than the applied one is never applied."""
    applied = signer.bundle(DOCUMENTS, 5)
    client = policy_client(tmp_path, signer)
    collector.policy = applied
    verified = fetch(client, collector)
    client.keep(verified)
    collector.policy = signer.bundle(DOCUMENTS, 4)
    outcome = fetch(client, collector)
    assert rejected(outcome) == "older_version"
    assert (outcome.evidence.version, outcome.evidence.applied_version) == ("4", "5")


def test_other_groups_bundle_is_refused(tmp_path: Path, signer: PolicySigner,
                                        collector: FakeCollector) -> None:
    """A canary bundle replayed to another group is refused."""
    collector.policy = signer.bundle(DOCUMENTS, 3, group="canary")
    outcome = fetch(policy_client(tmp_path, signer), collector)
    assert rejected(outcome) == "other_group" and "canary" in outcome.evidence.reason


def test_invalid_but_signed_bundle_is_refused(tmp_path: Path, signer: PolicySigner,
                                              collector: FakeCollector) -> None:
    """A signed bundle whose document does not validate is refused, naming the problem."""
    agent = DOCUMENTS["agent"].model_dump(mode="json")
    agent["rules"][0]["match"] = {"missed_heartbeats": 3, "typo": 1}
    collector.policy = signer.raw_bundle({
        "format": BUNDLE_FORMAT, "version": 3, "group": None, "action": "publish",
        "source_version": None, "created_at": "2026-03-02T01:00:00+00:00", "author": "x",
        "note": "", "documents": {"agent": agent}})
    outcome = fetch(policy_client(tmp_path, signer), collector)
    assert rejected(outcome) == "invalid_policy"
    assert "typo" in outcome.evidence.reason and outcome.evidence.version == "3"


def test_bundle_lacking_a_required_section_is_refused(tmp_path: Path, signer: PolicySigner,
                                                      collector: FakeCollector) -> None:
    """An enabled detector's section must be in the bundle."""
    collector.policy = signer.bundle(DOCUMENTS, 3)
    client = policy_client(tmp_path, signer)
    client.required = frozenset({"agent", "networks_not_shipped"})
    assert rejected(fetch(client, collector)) == "invalid_policy"


def test_unchanged_poll_sends_the_etag_and_gets_304(tmp_path: Path, signer: PolicySigner,
                                                    collector: FakeCollector) -> None:
    """After a bundle, the next poll names its ETag and the collector answers 304."""
    collector.policy = signer.bundle(DOCUMENTS, 3)
    client = policy_client(tmp_path, signer)
    client.keep(fetch(client, collector))
    assert fetch(client, collector) is None
    assert collector.policy_requests[-1].headers["If-None-Match"] == collector.policy.etag


def test_a_restart_polls_with_the_kept_etag_and_gets_304(
    tmp_path: Path, signer: PolicySigner, collector: FakeCollector
) -> None:
    """The ETag is kept with the last good bundle: the first poll after a restart is a 304."""
    collector.policy = signer.bundle(DOCUMENTS, 5)
    client = policy_client(tmp_path, signer)
    client.keep(fetch(client, collector))
    kept = read_last_good(tmp_path, signer.public_key, "court-a", REQUIRED)
    assert kept is not None and kept.etag == collector.policy.etag
    restarted = PolicyClient(data_dir=tmp_path, public_key=signer.public_key, group="court-a",
                             required=REQUIRED, interval_s=60, applied=kept.bundle,
                             etag=kept.etag)
    assert fetch(restarted, collector) is None
    assert collector.policy_requests[-1].headers["If-None-Match"] == collector.policy.etag


def test_a_rejected_bundle_is_not_judged_again(tmp_path: Path, signer: PolicySigner,
                                               collector: FakeCollector) -> None:
    """The refused bundle's ETag is sent next time, so the same refusal is not repeated."""
    collector.policy = PolicySigner(signer.algorithm).bundle(DOCUMENTS, 3)
    client = policy_client(tmp_path, signer)
    assert rejected(fetch(client, collector)) == "bad_signature"
    assert fetch(client, collector) is None


def test_last_good_survives_and_tampering_is_caught(tmp_path: Path, signer: PolicySigner,
                                                    collector: FakeCollector) -> None:
    """keep() stores the bundle; it verifies again at start; a changed byte makes it unusable."""
    collector.policy = signer.bundle(DOCUMENTS, 7)
    client = policy_client(tmp_path, signer)
    client.keep(fetch(client, collector))
    assert last_good_path(tmp_path).stat().st_mode & 0o777 == 0o600
    again = read_last_good(tmp_path, signer.public_key, "court-a", REQUIRED)
    assert again is not None and again.bundle.version == 7
    raw = bytearray(last_good_path(tmp_path).read_bytes())
    raw[-5] ^= 1
    last_good_path(tmp_path).write_bytes(bytes(raw))
    assert read_last_good(tmp_path, signer.public_key, "court-a", REQUIRED) is None


def test_hint_wakes_only_for_a_newer_version(tmp_path: Path, signer: PolicySigner) -> None:
    """An ingest hint of the applied version, or garbage, does not trigger a fetch."""
    client = policy_client(tmp_path, signer, applied=None)
    client.hint("3")
    assert client._wake.is_set()
    client._wake.clear()
    client.applied = read_bundle(signer, 3)
    for value in ("3", "2", None, "local-abc"):
        client.hint(value)
    assert not client._wake.is_set()
    client.hint("4")
    assert client._wake.is_set()


def read_bundle(signer: PolicySigner, version: int) -> Any:
    from agent.policy.bundle import parse_bundle

    return parse_bundle(signer.bundle(DOCUMENTS, version).body)


def test_a_fetch_is_held_only_when_the_collector_holds_it(
    tmp_path: Path, signer: PolicySigner, collector: FakeCollector
) -> None:
    """Prefer: wait is sent; a new ETag makes the next fetch go at once, a quick 304 does not."""
    collector.policy = signer.bundle(DOCUMENTS, 3, group="court-a")
    inner = collector.transport()

    async def honouring(request: httpx.Request) -> httpx.Response:
        response = await inner.handle_async_request(request)
        response.headers["Preference-Applied"] = "wait=25"
        return response

    client = PolicyClient(data_dir=tmp_path, public_key=signer.public_key, group="court-a",
                          required=REQUIRED, interval_s=60, wait_s=25)

    async def twice() -> tuple[bool, bool]:
        async with httpx.AsyncClient(
            base_url="http://collector.test", transport=httpx.MockTransport(honouring)
        ) as http:
            authorization = f"Bearer {collector.agent_id}:{collector.secret}"
            await client.fetch_once(http, authorization)
            first = client.held
            await client.fetch_once(http, authorization)  # the same ETag: a 304 at once
            return first, client.held

    first, second = asyncio.run(twice())
    assert (first, second) == (True, False)
    assert all(r.headers["Prefer"] == "wait=25" for r in collector.policy_requests)
