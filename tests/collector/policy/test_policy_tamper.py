"""A policy row edited in the store is never re-signed, acted on or served (SQLite and PostgreSQL).

The edits are made the way an attacker with database access would make them:
SQL on ``policy_bundles``, with the real signing key out of reach.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from collector.cli import main
from collector.policy.current import CurrentPolicy
from collector.policy.publish import publish_bundle
from collector.policy.signing import ensure_signing_key, load_signing_key, verifying_public_key
from collector.settings import CollectorSettings
from collector.store.database import Database
from collector.store.policies import StoredBundle
from collector.store.tables import audit_log, events, policy_bundles
from tests.collector.conftest import POLICIES, TestClient, enroll
from tests.collector.policy.test_policy_store import DOCUMENTS, get_policy

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
GENUINE_MOBILE = "13800000001"  # zhang_wei in policies/alerting.yaml
FORGED_MOBILE = "13999999999"


def forge(db: Database, version: int, *, body: bool = True, agent_body: bool = True) -> None:
    """Edit a stored row's bytes in place, leaving signatures and digests as they were."""
    with db.write() as conn:
        row = conn.execute(
            sa.select(policy_bundles.c.body, policy_bundles.c.agent_body)
            .where(policy_bundles.c.version == version)
        ).one()
        values: dict[str, bytes] = {}
        if body:
            assert GENUINE_MOBILE.encode() in row.body
            values["body"] = row.body.replace(GENUINE_MOBILE.encode(), FORGED_MOBILE.encode())
        if agent_body:
            assert b'"severity":"high"' in row.agent_body
            values["agent_body"] = row.agent_body.replace(b'"severity":"high"',
                                                          b'"severity":"low"', 1)
        conn.execute(sa.update(policy_bundles).where(policy_bundles.c.version == version)
                     .values(**values))


def versions(db: Database) -> list[int]:
    with db.read() as conn:
        return list(conn.execute(sa.select(policy_bundles.c.version)
                                 .order_by(policy_bundles.c.version)).scalars())


def audit_actions(db: Database) -> list[tuple[str, str, str | None]]:
    with db.read() as conn:
        rows = conn.execute(sa.select(audit_log.c.action, audit_log.c.object_id,
                                      audit_log.c.reason).order_by(audit_log.c.id)).all()
    return [(row.action, row.object_id, row.reason) for row in rows]


def rejections(db: Database) -> list[Any]:
    with db.read() as conn:
        return conn.execute(sa.select(events).where(
            events.c.kind == "collector.policy_rejected").order_by(events.c.pk)).all()


# -- promote and rollback ------------------------------------------------------


@pytest.fixture
def cli(settings: CollectorSettings, capsys: pytest.CaptureFixture[str]) -> Any:
    def run(*args: str) -> tuple[int, str, str]:
        code = main([*args, "--data-dir", str(settings.data_dir),
                     "--database-url", settings.database_url])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.mark.parametrize("command", ["promote", "rollback"])
@pytest.mark.parametrize("edited", ["both", "body", "agent_body"])
def test_resigning_refuses_an_edited_row(cli: Any, db: Database, command: str,
                                         edited: str) -> None:
    """An edit of either signed body stops promote and rollback: exit 1, a clear message,
    no new version, and the refusal in the audit log."""
    assert cli("init")[0] == 0
    code, _, err = cli("policy", "publish", str(POLICIES), "--group", "canary")
    assert code == 0, err
    forge(db, 1, body=edited != "agent_body", agent_body=edited != "body")
    code, out, err = cli("policy", command, "1", "--author", "mallory")
    assert code == 1 and out == ""
    assert err.startswith("error: 策略版本 1 未通过验证") and "Traceback" not in err
    assert "签名与本收集端签名密钥不符" in err and "no new version made" in err
    assert versions(db) == [1]
    refused = [a for a in audit_actions(db) if a[0] == f"policy.{command}_refused"]
    assert len(refused) == 1 and refused[0][1] == "1" and "签名" in (refused[0][2] or "")


def test_resigning_refuses_a_row_moved_to_every_group(cli: Any, db: Database) -> None:
    """A canary's genuine bytes relabelled, by SQL, as a bundle for every group are refused."""
    cli("init")
    cli("policy", "publish", str(POLICIES), "--group", "canary")
    with db.write() as conn:
        conn.execute(sa.update(policy_bundles).values(group=None))
    code, _, err = cli("policy", "rollback", "1")
    assert code == 1 and "记录被挪用" in err and versions(db) == [1]


def test_resigning_a_genuine_row_is_audited(cli: Any, db: Database) -> None:
    """Publish, promote and rollback of genuine rows work and each leaves an audit entry."""
    cli("init")
    assert cli("policy", "publish", str(POLICIES), "--group", "canary", "--author", "zhang")[0] == 0
    assert cli("policy", "promote", "1")[0] == 0
    assert cli("policy", "rollback", "1", "--group", "canary")[0] == 0
    assert versions(db) == [1, 2, 3]
    assert [a[:2] for a in audit_actions(db)] == [
        ("policy.publish", "1"), ("policy.promote", "2"), ("policy.rollback", "3")]


# -- what the collector acts on -------------------------------------------------


@pytest.fixture
def key(settings: CollectorSettings) -> str:
    ensure_signing_key(settings.data_dir)
    public = verifying_public_key(settings.data_dir)
    assert public is not None
    return public


def publish(db: Database, settings: CollectorSettings, group: str | None = None) -> StoredBundle:
    return publish_bundle(db, DOCUMENTS, load_signing_key(settings.data_dir), group=group,
                          author="tester", note="", created_at=NOW)


def mobile(current: CurrentPolicy) -> str | None:
    policies = current.get()
    assert policies is not None
    alerting: Any = policies.section("alerting")
    number: str | None = alerting.people["zhang_wei"].mobile
    return number


def test_current_policy_keeps_the_verified_roster_when_a_newer_row_is_edited(
    db: Database, settings: CollectorSettings, key: str
) -> None:
    """An edited duty mobile number is not used: the last verified version is, and one
    collector.policy_rejected event (high) says so, however often the policy is read."""
    current = CurrentPolicy(db, None, key)
    publish(db, settings)
    assert mobile(current) == GENUINE_MOBILE and current.bundle_version == 1
    publish(db, settings)
    forge(db, 2, agent_body=False)
    for _ in range(3):
        assert mobile(current) == GENUINE_MOBILE
    assert current.bundle_version == 1
    [event] = rejections(db)
    assert event.severity == 3 and event.policy_version == "1"  # Severity.HIGH.rank
    assert event.evidence["version"] == "2" and event.evidence["applied_version"] == "1"
    assert event.evidence["reason_code"] == "bad_signature"
    assert "继续使用已通过验证的版本 1" in event.summary and FORGED_MOBILE not in event.summary
    # A second process (or a restart) skips the edited row too, without a second event.
    other = CurrentPolicy(db, None, key)
    assert mobile(other) == GENUINE_MOBILE and other.bundle_version == 1
    assert len(rejections(db)) == 1


def test_current_policy_without_a_verified_bundle_uses_the_files(
    db: Database, settings: CollectorSettings, key: str
) -> None:
    """The only bundle edited: the policy files count, and the event says so."""
    publish(db, settings)
    forge(db, 1)
    current = CurrentPolicy(db, POLICIES, key)
    policies = current.get()
    assert policies is not None and policies.version.startswith("local-")
    assert mobile(current) == GENUINE_MOBILE and current.bundle_version is None
    [event] = rejections(db)
    assert "改用策略目录中的策略文件" in event.summary and event.policy_version is None


def test_current_policy_verifies_once_per_version(
    db: Database, settings: CollectorSettings, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``get`` is on hot paths: a bundle is verified when the version moves, not per call."""
    import collector.policy.rejections as rejections_module

    calls: list[int] = []
    real = rejections_module.verify_stored

    def counting(stored: StoredBundle, public_key: str) -> Any:
        calls.append(stored.version)
        return real(stored, public_key)

    monkeypatch.setattr(rejections_module, "verify_stored", counting)
    current = CurrentPolicy(db, None, key)
    publish(db, settings)
    first = current.get()
    for _ in range(20):
        assert current.get() is first
    publish(db, settings)
    for _ in range(20):
        current.get()
    assert calls == [1, 2]


def test_current_policy_without_the_key_file_believes_no_bundle(
    db: Database, settings: CollectorSettings, key: str
) -> None:
    """No key to verify with: published bundles are not acted on; the files are."""
    publish(db, settings)
    current = CurrentPolicy(db, POLICIES, None)
    policies = current.get()
    assert policies is not None and policies.version.startswith("local-")


# -- what agents are served -----------------------------------------------------


@pytest.fixture
def signed_client(settings: CollectorSettings, db: Database, key: str) -> Iterator[TestClient]:
    from collector.app import create_app

    fresh = settings.model_copy(update={"policy_refresh_s": 0.0})
    with TestClient(create_app(fresh, db)) as test_client:
        yield test_client


def test_an_edited_row_is_not_served(signed_client: TestClient, db: Database,
                                     settings: CollectorSettings) -> None:
    """The group is served its newest row that verifies, and the edit is reported once;
    with none that verifies, nothing (404), not the edited bytes."""
    who = enroll(signed_client, db)
    genuine = publish(db, settings)
    publish(db, settings)
    forge(db, 2, body=False)
    served = get_policy(signed_client, who)
    assert served.status_code == 200 and served.content == genuine.agent_body
    assert get_policy(signed_client, who).content == genuine.agent_body
    [event] = rejections(db)
    assert event.evidence["version"] == "2" and "代理策略包" in event.summary
    forge(db, 1, body=False)
    publish(db, settings)
    forge(db, 3, body=False)
    from collector.app import create_app

    # A collector started now (its own store connections, an empty cache).
    fresh = settings.model_copy(update={"policy_refresh_s": 0.0})
    with TestClient(create_app(fresh)) as restarted:
        assert get_policy(restarted, who).json()["error"] == "no_policy"
    assert sorted(e.evidence["version"] for e in rejections(db)) == ["1", "2", "3"]


# -- what people are shown ------------------------------------------------------


def test_status_marks_an_edited_row(cli: Any, db: Database) -> None:
    """``policy status`` checks every version: the edited one is marked failed, with why,
    and is no group's target."""
    import json

    cli("init")
    cli("policy", "publish", str(POLICIES))
    cli("policy", "publish", str(POLICIES))
    forge(db, 2, agent_body=False)
    with db.write() as conn:  # a rewritten author, bytes untouched, is caught as well
        conn.execute(sa.update(policy_bundles).where(policy_bundles.c.version == 1)
                     .values(author="mallory"))
    code, out, _ = cli("policy", "status")
    lines = out.splitlines()
    assert code == 0 and "signature" in lines[0]
    assert lines[1].split()[0] == "2" and "failed" in lines[1]
    assert "warning: version 2 does not verify" in out
    assert "warning: version 1 does not verify" in out
    publish_again = cli("policy", "publish", str(POLICIES))
    assert publish_again[0] == 0
    status = json.loads(cli("policy", "status", "--json")[1])
    assert [(v["version"], v["verified"]) for v in status["versions"]] == [
        (3, True), (2, False), (1, False)]
    assert "发布人" in status["versions"][2]["verification_failure"]


def test_policies_api_and_page_mark_an_edited_row(
    signed_client: TestClient, db: Database, settings: CollectorSettings, admin: dict[str, str]
) -> None:
    """The admin API and the console say which version failed; a group's target is the one
    it is served."""
    publish(db, settings)
    publish(db, settings)
    forge(db, 2)
    heartbeat_agent = enroll(signed_client, db)
    assert get_policy(signed_client, heartbeat_agent).status_code == 200
    status = signed_client.get("/api/v1/policies", headers=admin).json()
    assert [(v["version"], v["verified"]) for v in status["versions"]] == [(2, False), (1, True)]
    assert "签名" in status["versions"][0]["verification_failure"]
    assert status["groups"][0]["target_version"] == 1
    from collector.console import users
    from tests.collector.console.conftest import PASSWORD, login

    users.create_user(db, "auditor1", "auditor", PASSWORD, NOW)
    assert login(signed_client, "auditor1").status_code == 303
    page = signed_client.get("/console/policies").text
    assert page.count("未通过验证，不使用也不下发") == 1 and page.count("已通过验证") == 1
