"""Signed bundles in the store and over the API: versions, signatures, groups, ETags, hints."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from agent.policy.bundle import open_bundle, parse_bundle
from agent.policy.loader import load_policy_dir
from collector.app import create_app
from collector.policy.publish import publish_bundle
from collector.policy.signing import (
    load_signing_key,
    verifying_public_key,
)
from collector.settings import CollectorSettings
from collector.store import migrate
from collector.store.database import Database
from collector.store.policies import StoredBundle, latest_for_group
from tests.alerting_contacts import alerting_contacts
from tests.collector.conftest import POLICIES, EnrolledAgent, TestClient, enroll, heartbeat
from tests.collector.conftest import post_events as post
from tests.e2e.harness import wait_until

DOCUMENTS = load_policy_dir(POLICIES).documents
NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def publish(db: Database, data_dir: Path, group: str | None = None, note: str = "") -> StoredBundle:
    return publish_bundle(db, DOCUMENTS, load_signing_key(data_dir), group=group, author="tester",
                          note=note, created_at=NOW)


@pytest.fixture
def signed_client(settings: CollectorSettings, db: Database, signing: Path) -> Iterator[TestClient]:
    fresh = settings.model_copy(update={"policy_refresh_s": 0.0})
    with TestClient(create_app(fresh, db)) as test_client:
        yield test_client


def test_group_targeting(db: Database, signing: Path) -> None:
    """A group sees the newest bundle aimed at it or at everyone; others skip canaries."""
    everyone = publish(db, signing)
    canary = publish(db, signing, group="canary")
    assert latest_for_group(db, "canary") == canary
    found = latest_for_group(db, "court-a")
    assert found is not None and found.version == everyone.version


def get_policy(client: TestClient, who: EnrolledAgent, etag: str | None = None) -> httpx.Response:
    headers = {"Authorization": who.headers()["Authorization"]}
    if etag:
        headers["If-None-Match"] = etag
    return client.get("/api/v1/policy", headers=headers)


def test_agent_fetch_etag_and_404(signed_client: TestClient, db: Database, signing: Path) -> None:
    """404 before any publish; then the exact signed bytes; 304 for the same ETag; 200 after."""
    who = enroll(signed_client, db)
    assert get_policy(signed_client, who).json()["error"] == "no_policy"
    stored = publish(db, signing)
    first = get_policy(signed_client, who)
    assert first.status_code == 200 and first.content == stored.agent_body
    assert first.headers["X-Courtguard-Signature"] == stored.agent_signature
    assert first.headers["ETag"] == f'"1-{stored.agent_sha256[:16]}"'
    assert first.headers["X-Courtguard-Group"] == "court-a"
    unchanged = get_policy(signed_client, who, first.headers["ETag"])
    assert unchanged.status_code == 304 and unchanged.content == b""
    publish(db, signing)
    assert get_policy(signed_client, who, first.headers["ETag"]).status_code == 200


def test_fetch_needs_agent_credentials(signed_client: TestClient) -> None:
    """No credentials, no policy."""
    assert signed_client.get("/api/v1/policy").status_code == 401


def test_enrollment_hands_out_the_public_key(signed_client: TestClient, db: Database,
                                             signing: Path) -> None:
    """The enrollment answer carries the key the agent pins."""
    from tests.collector.conftest import make_token

    answer = signed_client.post("/api/v1/enroll", json={
        "token": make_token(db), "hostname": "ws-9", "agent_version": "0.1.0"}).json()
    assert base64.b64decode(answer["policy_key"]) == base64.b64decode(
        load_signing_key(signing).public_key.text)


def test_ingest_hints_the_groups_version_and_records_applied(
    signed_client: TestClient, db: Database, signing: Path, admin: dict[str, str]
) -> None:
    """IngestResult.policy_version names the version for the agent's group; heartbeats record it."""
    who = enroll(signed_client, db)
    assert post(signed_client, who, [heartbeat(who.agent_id, 1)]).json()["policy_version"] is None
    publish(db, signing, group="court-a")
    answer = post(signed_client, who, [heartbeat(who.agent_id, 2, policy_version="1")]).json()
    assert answer["policy_version"] == "1"
    status = signed_client.get("/api/v1/policies", headers=admin).json()
    assert status["versions"][0]["agents"] == 1 and status["versions"][0]["author"] == "tester"
    assert status["groups"] == [{"group": "court-a", "agents": 1, "by_version": {"1": 1},
                                 "target_version": 1, "converged": True}]


def test_policies_api_needs_admin(signed_client: TestClient) -> None:
    assert signed_client.get("/api/v1/policies").status_code == 401


def test_migration_upgrades_an_existing_store(settings: CollectorSettings) -> None:
    """A store at 0001 (an install from before bundles) upgrades to 0002 with the counter at 0."""
    database = Database.from_settings(settings, single_connection=True)
    migrate.upgrade(database, "0001")
    migrate.upgrade(database)
    assert migrate.current_revision(database) == migrate.head_revision()
    database.dispose()


def test_silent_monitor_follows_the_published_bundle(db: Database, signing: Path,
                                                    settings: CollectorSettings) -> None:
    """agent.silent's threshold comes from the newest bundle for every group, not a canary's."""
    from collector.correlation.silent_pass import SilentAgentPass
    from collector.metrics import Metrics
    from collector.policy.current import CurrentPolicy

    current = CurrentPolicy(db, settings.policy_dir, verifying_public_key(signing))
    monitor = SilentAgentPass(db, Metrics(), current, 3600, 60)
    assert monitor.rule.missed_heartbeats == 3 and monitor.rule.policy_version.startswith("local-")
    data = DOCUMENTS["agent"].model_dump(mode="json")
    data["rules"][0]["match"]["missed_heartbeats"] = 7
    changed = {"agent": type(DOCUMENTS["agent"]).model_validate(data)}
    publish_bundle(db, changed, load_signing_key(signing), group=None, author="t", note="",
                   created_at=NOW)
    data["rules"][0]["match"]["missed_heartbeats"] = 11
    canary = {"agent": type(DOCUMENTS["agent"]).model_validate(data)}
    publish_bundle(db, canary, load_signing_key(signing), group="canary", author="t", note="",
                   created_at=NOW)
    monitor.reload_rule()
    assert (monitor.rule.missed_heartbeats, monitor.rule.policy_version) == (7, "1")


def test_unchanged_poll_reads_nothing_from_the_store(
    signed_client: TestClient, db: Database, signing: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the first poll, an unchanged poll is answered from memory: no credential read."""
    import collector.api.auth as auth

    who = enroll(signed_client, db)
    publish(db, signing)
    etag = get_policy(signed_client, who).headers["ETag"]
    policies = signed_client.app.state.courtguard.policies
    policies._refresh_s = 3600.0  # the test app re-reads the counter every poll; production 2 s
    store_reads = policies.reads
    reads: list[str] = []
    real = auth.authenticate
    monkeypatch.setattr(auth, "authenticate", lambda *a: reads.append("auth") or real(*a))
    for _ in range(5):
        assert get_policy(signed_client, who, etag).status_code == 304
    assert reads == [] and policies.reads == store_reads
    bad = EnrolledAgent(who.agent_id, "wrong-secret-" + "x" * 30, who.hostname)
    assert get_policy(signed_client, bad).status_code == 401  # a wrong secret is never cached
    assert reads == ["auth"]


def test_agents_are_served_a_bundle_without_collector_only_kinds(
    signed_client: TestClient, db: Database, signing: Path
) -> None:
    """The served bundle lacks ``alerting`` and every contact in it, and verifies on its own;
    the full bundle, which the collector acts on, keeps it."""
    from agent.daemon import required_sections
    from agent.registry import DETECTORS
    from collector.policy.current import CurrentPolicy

    assert "alerting" in DOCUMENTS  # the shipped directory has the roster
    stored = publish(db, signing, note="双包")
    served = get_policy(signed_client, enroll(signed_client, db))
    assert served.status_code == 200 and served.content != stored.body
    for contact in alerting_contacts():
        assert contact.encode() in stored.body
        assert contact.encode() not in served.content, contact
    public = load_signing_key(signing).public_key.text
    bundle, policies = open_bundle(served.content, served.headers["X-Courtguard-Signature"],
                                   public, group="court-a", applied_version=None,
                                   required=required_sections(DETECTORS))
    assert set(policies.documents) == set(DOCUMENTS) - {"alerting"}
    full = parse_bundle(stored.body)
    assert "alerting" in full.documents
    assert bundle.model_dump(exclude={"documents"}) == full.model_dump(exclude={"documents"})
    # The collector still routes with the published roster (no policy files to fall back on).
    current = CurrentPolicy(db, None, verifying_public_key(signing)).get()
    assert current is not None and current.version == "1"
    assert current.section("alerting") == DOCUMENTS["alerting"]


def test_bundle_stored_before_0006_is_served_whole_with_one_warning(
    signed_client: TestClient, db: Database, signing: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No agent body (a row from before the migration): the full signed bundle, one warning."""
    import sqlalchemy as sa

    import collector.policy.serving as serving
    from collector.store.tables import policy_bundles

    warnings: list[tuple[str, dict[str, object]]] = []

    class Recorder:
        def warning(self, event: str, **fields: object) -> None:
            warnings.append((event, fields))

    monkeypatch.setattr(serving, "log", Recorder())
    who = enroll(signed_client, db)
    stored = publish(db, signing)
    with db.write() as conn:
        conn.execute(sa.update(policy_bundles).values(
            agent_body=None, agent_signature=None, agent_sha256=None))
    first = get_policy(signed_client, who)
    assert first.content == stored.body
    assert first.headers["X-Courtguard-Signature"] == stored.signature
    assert first.headers["ETag"] == f'"1-{stored.sha256[:16]}"'
    public = load_signing_key(signing).public_key.text
    open_bundle(first.content, stored.signature, public, group="court-a", applied_version=None)
    assert get_policy(signed_client, who, first.headers["ETag"]).status_code == 304
    assert get_policy(signed_client, who).status_code == 200
    assert len(warnings) == 1 and "migration 0006" in warnings[0][0]
    assert warnings[0][1]["version"] == 1
    republished = publish(db, signing)
    again = get_policy(signed_client, who)
    assert again.content == republished.agent_body
    assert "alerting" not in parse_bundle(again.content).documents
    assert len(warnings) == 1


def test_agents_are_served_a_bundle_without_rule_cases(
    signed_client: TestClient, db: Database, signing: Path
) -> None:
    """Rules' fire/silent cases are for ``policy check`` and the tests: the full bundle keeps
    them, the served one has none, and the agent reads the same rules from it."""
    from agent.daemon import required_sections
    from agent.registry import DETECTORS

    shipped = sum(len(rule.cases) for doc in DOCUMENTS.values() for rule in doc.rules)
    assert shipped > 100
    stored = publish(db, signing)
    assert sum(
        len(rule.get("cases", ())) for doc in parse_bundle(stored.body).documents.values()
        for rule in doc["rules"]
    ) == shipped
    served = get_policy(signed_client, enroll(signed_client, db))
    assert served.status_code == 200 and b'"cases"' not in served.content
    public = load_signing_key(signing).public_key.text
    _, policies = open_bundle(served.content, served.headers["X-Courtguard-Signature"], public,
                              group="court-a", applied_version=None,
                              required=required_sections(DETECTORS))
    for kind, document in policies.documents.items():
        assert document.rules == [
            rule.model_copy(update={"cases": []}) for rule in DOCUMENTS[kind].rules
        ]
        assert document.lists == DOCUMENTS[kind].lists


def test_a_held_fetch_answers_304_when_nothing_is_published(
    signed_client: TestClient, db: Database, signing: Path
) -> None:
    """Prefer: wait=1 with the current ETag: a 304 that says the wait was honoured."""
    who = enroll(signed_client, db)
    publish(db, signing)
    etag = get_policy(signed_client, who).headers["ETag"]
    headers = {**who.headers(), "If-None-Match": etag, "Prefer": "wait=1"}
    held = signed_client.get("/api/v1/policy", headers=headers)
    assert held.status_code == 304
    assert held.headers["Preference-Applied"] == "wait=1"


def test_a_held_fetch_answers_with_a_bundle_published_while_it_waits(
    signed_client: TestClient, db: Database, signing: Path
) -> None:
    """A fetch held for up to 55 s is answered with the new bundle once it is published."""
    from collector.api.policy import policy_waits

    who = enroll(signed_client, db)
    publish(db, signing)
    etag = get_policy(signed_client, who).headers["ETag"]
    waits = policy_waits(signed_client.app)
    answers: list[httpx.Response] = []
    headers = {**who.headers(), "If-None-Match": etag, "Prefer": "wait=55"}
    fetch = threading.Thread(
        target=lambda: answers.append(signed_client.get("/api/v1/policy", headers=headers))
    )
    fetch.start()
    wait_until(lambda: waits.waiting == 1, 30, "the fetch held")
    newer = publish(db, signing)
    fetch.join(60)
    assert answers and answers[0].status_code == 200
    assert answers[0].headers["X-Courtguard-Policy-Version"] == str(newer.version)


def test_wait_preference_is_bounded_and_tolerant() -> None:
    """Prefer: wait=N is read among other preferences, capped, and ignored when malformed."""
    from collector.api.policy import MAX_WAIT_S, wait_preference

    assert wait_preference("respond-async, wait=10") == 10
    assert wait_preference("wait=3600") == MAX_WAIT_S
    assert wait_preference("wait=soon") == 0
    assert wait_preference(None) == 0


def test_fetches_beyond_the_held_cap_are_answered_at_once(
    settings: CollectorSettings, db: Database, signing: Path
) -> None:
    """With policy_held_max fetches held, the next is answered at once and not claimed as
    held (the agent polls on its timer); once the held one ends, fetches are held again.
    Every held fetch sees a publish through the one watcher of the version counter."""
    from collector.api.policy import policy_waits

    capped = settings.model_copy(update={"policy_refresh_s": 0.0, "policy_held_max": 1})
    with TestClient(create_app(capped, db)) as client:
        who = enroll(client, db)
        publish(db, signing)
        etag = get_policy(client, who).headers["ETag"]
        waits = policy_waits(client.app)
        answers: list[httpx.Response] = []
        headers = {**who.headers(), "If-None-Match": etag, "Prefer": "wait=55"}
        fetch = threading.Thread(
            target=lambda: answers.append(client.get("/api/v1/policy", headers=headers)))
        fetch.start()
        wait_until(lambda: waits.waiting == 1, 30, "the fetch held")
        beyond = client.get("/api/v1/policy", headers=headers)
        assert beyond.status_code == 304
        assert "Preference-Applied" not in beyond.headers
        assert waits.waiting == 1
        newer = publish(db, signing)
        fetch.join(60)
        assert answers and answers[0].status_code == 200
        assert answers[0].headers["X-Courtguard-Policy-Version"] == str(newer.version)
        assert answers[0].headers["Preference-Applied"] == "wait=55"
        again = client.get("/api/v1/policy", headers={
            **headers, "If-None-Match": answers[0].headers["ETag"], "Prefer": "wait=1"})
        assert again.status_code == 304 and again.headers["Preference-Applied"] == "wait=1"
        registry = client.app.state.courtguard.metrics.registry
        assert registry.get_sample_value("courtguard_policy_fetches_not_held_total") == 1
