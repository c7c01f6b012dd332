"""The overview (安全态势总览) and the entity pages: figures on both stores, pages, escaping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from collector.alerts import service
from collector.console import entities, overview
from collector.store import doccheck
from collector.store.audit import Actor
from collector.store.database import Database
from tests.collector.conftest import TestClient, enroll, event, post_events
from tests.collector.console.conftest import login

SHA = "b" * 64
HOSTILE = '<script>window.__pwned=1</script>"><img src=x onerror=1>'


def _document(sha: str = SHA, name: str = "判决书.docx") -> dict[str, Any]:
    return {"file_name": name, "folder": "/srv/publish", "sha256": sha, "size": 10,
            "verdict": "do_not_publish", "profile": "spc-2016", "action": "block",
            "basis": "身份证号未脱敏", "occurrences": [], "occurrences_total": 1}


def _session(action: str, account: str, session_id: str = "s1") -> dict[str, Any]:
    return {"account": account, "role": "maintenance", "sponsor": "信息技术处 王强",
            "action": action, "session_id": session_id, "service": "sshd",
            "remote_host": "192.0.2.7"}


def _seed(client: TestClient, db: Database) -> dict[str, Any]:
    """Two hosts: outreach, account and document findings, a session, an interface."""
    now = datetime.now(UTC)
    first = enroll(client, db, "ws-court-01")
    second = enroll(client, db, "ws-court-02")
    seen = {"first_seen": now.isoformat(), "last_seen": now.isoformat(), "count": 1}
    assert post_events(client, first, [
        event(first.agent_id, 1, kind="outreach.flow", severity="critical", host="ws-court-01",
              rule_id="outreach.flow-outside", evidence={
                  **seen, "interface": "wwan0", "protocol": "tcp", "local_address": "10.0.0.5",
                  "remote_address": "203.0.113.9", "remote_port": 443}),
        event(first.agent_id, 2, kind="outreach.interface", severity="high", host="ws-court-01",
              rule_id="outreach.new-interface", evidence={
                  **seen, "interface": "wwan0", "interface_class": "cellular",
                  "interface_mac": "02:00:00:00:00:01"}),
        event(first.agent_id, 3, kind="account.session", severity="info", host="ws-court-01",
              evidence=_session("open", "wb_zhao")),
        event(first.agent_id, 4, kind="document.block", severity="high", host="ws-court-01",
              rule_id="document.id_number", evidence=_document()),
    ]).status_code == 200
    assert post_events(client, second, [
        event(second.agent_id, 1, kind="account.session", severity="info", host="ws-court-02",
              evidence=_session("open", "wb_zhao", "s2")),
        event(second.agent_id, 2, kind="account.privilege", severity="medium",
              host="ws-court-02", rule_id="accounts.sudo", evidence={
                  "account": "wb_zhao", "tool": "sudo", "outcome": "success",
                  "target": "root", "command": "/usr/bin/id"}),
        event(second.agent_id, 3, kind="document.block", severity="high", host="ws-court-02",
              rule_id="document.id_number", evidence=_document(name="判决书-副本.docx")),
    ]).status_code == 200
    return {"first": first, "second": second, "now": now}


def test_figures_per_pillar_and_window(client: TestClient, db: Database) -> None:
    seeded = _seed(client, db)
    now = datetime.now(UTC)
    result = overview.figures(db, now)
    pillars = result["pillars"]
    assert overview.findings_today(db, now) == {"outreach": 2, "account": 1, "document": 2}
    assert pillars["outreach"]["windows"]["30d"]["opened"] == 2
    assert pillars["outreach"]["open"]["critical"] == 1
    assert pillars["outreach"]["open"]["high"] == 1
    assert pillars["account"]["windows"]["7d"]["opened"] == 1  # sessions are info
    assert pillars["document"]["open"]["high"] == 2
    assert pillars["outreach"]["trend"][-1] == 2 and len(result["days"]) == overview.TREND_DAYS
    assert pillars["outreach"]["windows"]["today"]["ack_median_min"] is None

    critical = service.list_alerts(db, service.AlertFilter(severities=[4]), 10)
    assert [a["host"] for a in critical] == ["ws-court-01"]
    actor = Actor("zhang", via="console")
    service.transition(db, [critical[0]["id"]], "acknowledge", actor, assignee="zhang")
    service.transition(db, [critical[0]["id"]], "close", actor, resolution="true_positive",
                       comment="已处置")
    later = overview.figures(db, datetime.now(UTC))["pillars"]["outreach"]
    assert later["windows"]["today"]["closed"] == 1
    assert later["windows"]["today"]["ack_median_min"] is not None
    assert later["open"]["critical"] == 0

    top = overview.top_lists(db, now)
    assert {h["host"] for h in top["hosts"]} == {"ws-court-01", "ws-court-02"}
    assert top["hosts"][0]["agent_id"] == seeded["first"].agent_id  # three findings
    assert top["accounts"] == [{"account": "wb_zhao", "alerts": 1, "events": 1}]
    assert {"rule": "document.id_number", "alerts": 2, "events": 2} in top["rules"]
    latest = overview.latest_alerts(db)
    assert [a["severity"] for a in latest] == ["high", "high", "high"]


def test_an_old_event_is_no_finding_today_but_its_alert_is_new(client: TestClient,
                                                               db: Database) -> None:
    agent = enroll(client, db, "ws-old")
    old = datetime.now(UTC) - timedelta(days=40)
    evidence = {"first_seen": old.isoformat(), "last_seen": old.isoformat(), "count": 1,
                "protocol": "tcp", "local_address": "10.0.0.5", "remote_address": "203.0.113.9"}
    assert post_events(client, agent, [event(agent.agent_id, 1, kind="outreach.flow",
                                             severity="high", time=old, evidence=evidence)
                                       ]).status_code == 200
    now = datetime.now(UTC)
    assert overview.findings_today(db, now)["outreach"] == 0  # found 40 days ago
    pillars = overview.figures(db, now)["pillars"]
    assert pillars["outreach"]["windows"]["today"]["opened"] == 1  # but alerted on today
    assert pillars["outreach"]["trend"][-1] == 1 and sum(pillars["outreach"]["trend"]) == 1
    assert pillars["outreach"]["open"]["high"] == 1


def test_entity_details(client: TestClient, db: Database) -> None:
    seeded = _seed(client, db)
    first, second = seeded["first"], seeded["second"]
    from collector.console.params import Params

    everything = entities.EntityFilter(Params(), UTC)
    host = entities.host_detail(db, first.agent_id, client.app.state.monitor,
                                everything, datetime.now(UTC))
    assert host is not None and host["agent"]["hostname"] == "ws-court-01"
    assert [i["interface"] for i in host["interfaces"]] == ["wwan0"]
    assert host["interfaces"][0]["class"] == "cellular"
    assert [s["account"] for s in host["sessions"]] == ["wb_zhao"]
    assert {e["kind"] for e in host["timeline"]} == {"outreach.flow", "outreach.interface",
                                                     "account.session", "document.block"}
    outreach_only = entities.EntityFilter(Params([("pillar", "outreach")]), UTC)
    narrowed = entities.host_detail(db, first.agent_id, client.app.state.monitor,
                                    outreach_only, datetime.now(UTC))
    assert narrowed is not None
    assert {e["kind"] for e in narrowed["timeline"]} == {"outreach.flow", "outreach.interface"}
    assert entities.host_detail(db, "not-a-uuid", client.app.state.monitor,
                                everything, datetime.now(UTC)) is None

    account = entities.account_detail(db, "wb_zhao", None, everything)
    assert {h["host"] for h in account["hosts"]} == {"ws-court-01", "ws-court-02"}
    assert [p["tool"] for p in account["privileges"]] == ["sudo"]
    assert account["roster"] is None

    document = entities.document_detail(db, SHA)
    assert document is not None
    assert {h["agent_id"] for h in document["hosts"]} == {first.agent_id, second.agent_id}
    assert document["names"] == ["判决书-副本.docx", "判决书.docx"]
    assert len(document["alerts"]) == 2
    assert document["decisions"] == [] and document["checks"] == []
    assert entities.document_detail(db, "B" * 64) is None


def test_document_page_lists_clerks_checks_and_decisions(db: Database) -> None:
    now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    clerk = Actor("shuji_wang")
    doccheck.record_check(db, clerk, {
        "sha256": SHA, "file_name": "（2026）某01刑初1号.docx", "size": 2048,
        "verdict": "needs_redaction", "error": None, "findings": 3, "counts": {"pseudonymize": 3},
    }, 120.0, now)
    doccheck.decide(db, clerk, SHA, [{"key": "documents.party-name:body:10:12",
                                      "rule_id": "documents.party-name", "excerpt": "被告人张*"}],
                    "not_applicable", "已在上级法院公开的公众人物", now + timedelta(minutes=1))
    doccheck.decide(db, clerk, "c" * 64, [{"key": "k", "rule_id": "r", "excerpt": "x"}],
                    "not_applicable", "另一份文书", now)
    decisions = entities.clerk_decisions(db, SHA)
    assert [(d["decided_by"], d["decision"], d["excerpt"]) for d in decisions] == [
        ("shuji_wang", "not_applicable", "被告人张*")]
    checks = entities.clerk_checks(db, SHA)
    assert [(c["username"], c["verdict"], c["findings"]) for c in checks] == [
        ("shuji_wang", "needs_redaction", 3)]


def test_overview_is_the_landing_page(app_client: TestClient, console_db: Database) -> None:
    _seed(app_client, console_db)
    login(app_client, "li")  # an auditor reads it too
    landing = app_client.get("/console/", follow_redirects=False)
    assert landing.headers["location"] == "/console/overview"
    page = app_client.get("/console/overview")
    assert page.status_code == 200
    assert "<h1>安全态势总览</h1>" in page.text
    assert "违规外联" in page.text and "外包账号" in page.text and "裁判文书" in page.text
    assert 'id="ov-open-outreach-critical">1<' in page.text
    assert "connect-src 'self'" in page.headers["content-security-policy"]
    assert "/console/accounts/wb_zhao" in page.text  # the top lists link to entity pages
    live = app_client.get("/console/overview/live")
    assert live.status_code == 200 and "data-cursor=" in live.text
    assert "<header" not in live.text


def test_entity_pages(app_client: TestClient, console_db: Database) -> None:
    seeded = _seed(app_client, console_db)
    login(app_client, "zhang")
    host = app_client.get(f"/console/hosts/{seeded['first'].agent_id}")
    assert host.status_code == 200
    assert "wwan0" in host.text and "cellular" in host.text and "wb_zhao" in host.text
    narrowed = app_client.get(f"/console/hosts/{seeded['first'].agent_id}?pillar=document")
    assert "document.block" in narrowed.text and "outreach.flow" not in narrowed.text
    bad = app_client.get(f"/console/hosts/{seeded['first'].agent_id}?pillar=x")
    assert bad.status_code == 422 and "pillar" in bad.text
    assert app_client.get("/console/hosts/0190a0a0-0000-7000-8000-000000000000"
                          ).status_code == 404
    account = app_client.get("/console/accounts/wb_zhao")
    assert account.status_code == 200
    assert "信息技术处 王强" in account.text  # the roster's sponsor (pattern wb_*)
    assert "ws-court-02" in account.text and "/usr/bin/id" in account.text
    document = app_client.get(f"/console/documents/{SHA}")
    assert document.status_code == 200 and "判决书-副本.docx" in document.text
    assert app_client.get("/console/documents/not-a-hash").status_code == 404


def test_lists_link_to_the_entity_pages(app_client: TestClient, console_db: Database) -> None:
    seeded = _seed(app_client, console_db)
    login(app_client, "zhang")
    host_link = f'href="/console/hosts/{seeded["first"].agent_id}"'
    assert host_link in app_client.get("/console/alerts").text
    assert host_link in app_client.get("/console/events").text
    document_events = app_client.get("/api/v1/events?kind=document.block").json()["events"]
    page = app_client.get(f"/console/events/{document_events[0]['id']}").text
    assert f'href="/console/documents/{SHA}"' in page
    (privileged,) = app_client.get("/api/v1/events?kind=account.privilege").json()["events"]
    page = app_client.get(f"/console/events/{privileged['id']}").text
    assert 'href="/console/accounts/wb_zhao"' in page


def test_entity_pages_escape_what_agents_send(app_client: TestClient,
                                              console_db: Database) -> None:
    agent = enroll(app_client, console_db, "ws-hostile")
    post_events(app_client, agent, [
        event(agent.agent_id, 1, kind="account.session", severity="info", host="ws-hostile",
              evidence=_session("open", HOSTILE)),
        event(agent.agent_id, 2, kind="account.privilege", severity="high", host="ws-hostile",
              rule_id="accounts.sudo", evidence={"account": HOSTILE, "tool": "sudo",
                                                 "outcome": "success", "command": HOSTILE}),
    ])
    login(app_client, "zhang")
    for path in (f"/console/hosts/{agent.agent_id}", "/console/overview"):
        text = app_client.get(path).text
        assert "<script>window.__pwned" not in text and "<img src=x" not in text
        assert "&lt;script&gt;" in text
    from urllib.parse import quote

    account = app_client.get("/console/accounts/" + quote(HOSTILE, safe=""))
    assert account.status_code == 200
    assert "<script>window.__pwned" not in account.text and "&lt;script&gt;" in account.text
