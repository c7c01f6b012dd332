"""Host isolation over the API: admins only, signed orders agents verify, approval, audit."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.errors import OrderRejected
from agent.isolation.order import open_order
from collector.app import create_app
from collector.policy.signing import verifying_public_key
from collector.settings import CollectorSettings
from collector.store import apikeys
from collector.store.audit import AuditFilter, query_audit
from collector.store.database import Database
from tests.collector.conftest import EnrolledAgent, TestClient, enroll, heartbeat, post_events


def _key(db: Database, name: str, role: str = "admin") -> dict[str, str]:
    key = apikeys.create_api_key(db, name=name, role=role, now=datetime.now(UTC))[1]
    return {"Authorization": f"Bearer {key}"}


def _isolate(client: TestClient, who: dict[str, str], agent: EnrolledAgent, minutes: Any = 30,
             reason: Any = "疑似外联，先隔离排查") -> Any:
    return client.post(f"/api/v1/agents/{agent.agent_id}/isolations", headers=who,
                       json={"minutes": minutes, "reason": reason})


def _order(client: TestClient, agent: EnrolledAgent) -> Any:
    return client.get("/api/v1/isolation", headers=agent.headers())


def _audit(db: Database, action: str) -> list[dict[str, Any]]:
    return query_audit(db, AuditFilter(action=action, object_type="host_isolation"), 50)


@pytest.fixture
def agent(client: TestClient, db: Database, signing: Path) -> EnrolledAgent:
    return enroll(client, db)


@pytest.mark.parametrize("role", ["reviewer", "auditor"])
def test_only_admins_isolate(client: TestClient, db: Database, agent: EnrolledAgent,
                             role: str) -> None:
    refused = _isolate(client, _key(db, f"k-{role}", role), agent)
    assert refused.status_code == 403
    assert client.get("/api/v1/isolations", headers=_key(db, f"l-{role}", role)).status_code == 403
    assert _isolate(client, {}, agent).status_code == 401
    assert _order(client, agent).status_code == 404


def test_an_agent_cannot_use_the_admin_routes(client: TestClient, agent: EnrolledAgent) -> None:
    response = client.post(f"/api/v1/agents/{agent.agent_id}/isolations",
                           headers=agent.headers(), json={"minutes": 5, "reason": "x"})
    assert response.status_code == 401


def test_an_isolation_is_signed_for_the_agent_and_audited(
    client: TestClient, db: Database, settings: CollectorSettings, agent: EnrolledAgent,
    admin: dict[str, str],
) -> None:
    made = _isolate(client, admin, agent)
    assert made.status_code == 201, made.text
    assert made.json()["state"] == "active"
    served = _order(client, agent)
    assert served.status_code == 200
    public_key = verifying_public_key(settings.data_dir)
    assert public_key is not None
    order = open_order(served.content, served.headers["X-Courtguard-Signature"], public_key,
                       agent_id=uuid.UUID(agent.agent_id), accepted_sequence=None,
                       now=datetime.now(UTC))
    assert order.action == "isolate" and order.requested_by == "test"
    assert order.isolation_id == made.json()["id"]
    assert order.resolvers == ["10.0.0.53"]  # policies/networks.yaml: intranet_resolvers
    assert order.expires_at is not None
    assert timedelta(minutes=29) < order.expires_at - datetime.now(UTC) <= timedelta(minutes=30)
    entries = _audit(db, "isolation.request")
    assert [(e["actor"], e["object_id"], e["reason"]) for e in entries] == [
        ("test", str(made.json()["id"]), "疑似外联，先隔离排查")]


def test_another_agent_refuses_the_order(
    client: TestClient, db: Database, settings: CollectorSettings, agent: EnrolledAgent,
    admin: dict[str, str],
) -> None:
    assert _isolate(client, admin, agent).status_code == 201
    served = _order(client, agent)
    public_key = verifying_public_key(settings.data_dir)
    assert public_key is not None
    with pytest.raises(OrderRejected) as refused:
        open_order(served.content, served.headers["X-Courtguard-Signature"], public_key,
                   agent_id=uuid.uuid4(), accepted_sequence=None, now=datetime.now(UTC))
    assert refused.value.code == "other_agent"
    other = enroll(client, db, "ws-002")
    assert _order(client, other).status_code == 404


def test_the_ingest_answer_hints_the_newest_order(
    client: TestClient, agent: EnrolledAgent, admin: dict[str, str]
) -> None:
    before = post_events(client, agent, [heartbeat(agent.agent_id, 1)])
    assert "isolation_sequence" not in before.json()
    made = _isolate(client, admin, agent).json()
    after = post_events(client, agent, [heartbeat(agent.agent_id, 2)]).json()
    lifted = client.post(f"/api/v1/isolations/{made['id']}/lift", headers=admin,
                         json={"reason": "排查完毕"})
    assert lifted.status_code == 200, lifted.text
    later = post_events(client, agent, [heartbeat(agent.agent_id, 3)]).json()
    assert later["isolation_sequence"] > after["isolation_sequence"] >= 1


def test_a_lift_is_a_newer_signed_order_and_audited(
    client: TestClient, db: Database, agent: EnrolledAgent, admin: dict[str, str]
) -> None:
    made = _isolate(client, admin, agent).json()
    first = _order(client, agent).json()
    lifted = client.post(f"/api/v1/isolations/{made['id']}/lift", headers=admin, json={})
    assert lifted.json()["state"] == "lifted" and lifted.json()["ended_by"] == "test"
    second = _order(client, agent).json()
    assert second["action"] == "lift" and second["sequence"] > first["sequence"]
    assert len(_audit(db, "isolation.lift")) == 1
    again = client.post(f"/api/v1/isolations/{made['id']}/lift", headers=admin, json={})
    assert again.status_code == 409


def test_a_host_is_isolated_once_at_a_time(
    client: TestClient, agent: EnrolledAgent, admin: dict[str, str]
) -> None:
    assert _isolate(client, admin, agent).status_code == 201
    second = _isolate(client, admin, agent)
    assert second.status_code == 409
    assert "已有" in second.json()["detail"]


@pytest.mark.parametrize(("minutes", "reason"), [
    (0, "x"), (10081, "x"), ("many", "x"), (30, ""), (30, "   "), (30, "x" * 501), (None, "x"),
])
def test_bad_requests_are_refused_in_chinese(
    client: TestClient, db: Database, agent: EnrolledAgent, admin: dict[str, str],
    minutes: Any, reason: Any,
) -> None:
    refused = _isolate(client, admin, agent, minutes, reason)
    assert refused.status_code == 422
    assert refused.json()["error"] == "invalid_request"
    assert _order(client, agent).status_code == 404
    assert _audit(db, "isolation.request") == []


def test_an_unknown_agent_is_404(client: TestClient, admin: dict[str, str],
                                 signing: Path) -> None:
    for agent_id in (str(uuid.uuid4()), "not-a-uuid"):
        response = client.post(f"/api/v1/agents/{agent_id}/isolations", headers=admin,
                               json={"minutes": 5, "reason": "x"})
        assert response.status_code == 404


def test_without_a_signing_key_nothing_is_isolated(
    client: TestClient, db: Database, admin: dict[str, str]
) -> None:
    agent = enroll(client, db)
    refused = _isolate(client, admin, agent)
    assert refused.status_code == 503
    assert refused.json()["error"] == "no_signing_key"
    assert client.get("/api/v1/isolations?open=true", headers=admin).json() == {
        "isolations": []}


@pytest.fixture
def approving(settings: CollectorSettings, db: Database, signing: Path) -> Iterator[TestClient]:
    two_person = settings.model_copy(update={"isolation_requires_approval": True})
    with TestClient(create_app(two_person, db)) as test_client:
        yield test_client


def test_with_approval_an_order_waits_for_a_second_admin(
    approving: TestClient, db: Database
) -> None:
    agent = enroll(approving, db)
    first, second = _key(db, "admin-a"), _key(db, "admin-b")
    made = _isolate(approving, first, agent)
    assert made.status_code == 201 and made.json()["state"] == "pending"
    assert _order(approving, agent).status_code == 404  # nothing signed yet
    isolation_id = made.json()["id"]
    own = approving.post(f"/api/v1/isolations/{isolation_id}/approve", headers=first)
    assert own.status_code == 403 and own.json()["error"] == "own_request"
    approved = approving.post(f"/api/v1/isolations/{isolation_id}/approve", headers=second)
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "active"
    assert approved.json()["approved_by"] == "admin-b"
    order = _order(approving, agent).json()
    assert order["approved_by"] == "admin-b" and order["requested_by"] == "admin-a"
    assert [e["actor"] for e in _audit(db, "isolation.approve")] == ["admin-b"]
    twice = approving.post(f"/api/v1/isolations/{isolation_id}/approve", headers=second)
    assert twice.status_code == 409


def test_a_pending_isolation_can_be_cancelled_without_an_order(
    approving: TestClient, db: Database
) -> None:
    agent = enroll(approving, db)
    admin_a = _key(db, "admin-a")
    made = _isolate(approving, admin_a, agent).json()
    cancelled = approving.post(f"/api/v1/isolations/{made['id']}/lift", headers=admin_a,
                               json={"reason": "误操作"})
    assert cancelled.json()["state"] == "cancelled"
    assert _order(approving, agent).status_code == 404
    assert [e["reason"] for e in _audit(db, "isolation.cancel")] == ["误操作"]
