"""Triage from the alert list: in-place actions (JSON for the script, redirects without it),
translated codes, people's display names, the rule's text and basis, grouping."""

from __future__ import annotations

import re

import pytest

from collector.console import users
from collector.store.database import Database
from tests.collector.conftest import TestClient, enroll, event, post_events
from tests.collector.console.conftest import NOW, PASSWORD, csrf_of, login

FETCH = {"X-Requested-With": "fetch"}
FINDING = {"file_name": "判决书.docx", "sha256": "a" * 64, "size": 10,
           "verdict": "needs_redaction", "profile": "spc-2016", "action": "redact",
           "basis": "法释〔2016〕19号第十条第一款第（一）项：身份证件号码",
           "occurrences": [{"part": "body", "start": 1, "end": 19,
                            "excerpt": "1101**********1234"}], "occurrences_total": 1}


def seed(client: TestClient, db: Database) -> None:
    """Alerts of every severity on two hosts; one is a documents finding."""
    agent = enroll(client, db)
    batch = [event(agent.agent_id, 1, kind="document.block", severity="medium",
                   rule_id="documents.resident-id", host="ws-a", evidence=FINDING)]
    for seq, (severity, host) in enumerate((("critical", "ws-b"), ("low", "ws-a"),
                                            ("high", "ws-a")), start=2):
        batch.append(event(agent.agent_id, seq, kind="custom.probe", severity=severity,
                           rule_id=f"custom.rule-{seq}", host=host))
    assert post_events(client, agent, batch).status_code == 200


def alert_ids(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr class="alert-row" data-id="(\d+)"', page)]


def test_list_sorts_by_severity_then_every_column(app_client: TestClient,
                                                  console_db: Database) -> None:
    seed(app_client, console_db)
    login(app_client, "zhang")
    page = app_client.get("/console/alerts").text
    severities = re.findall(r'<tr class="alert-row".*?class="sev sev-(\w+)"', page, re.S)
    assert severities == ["critical", "high", "medium", "low"]
    assert 'aria-sort="descending" data-sort="severity"' in page
    by_host = app_client.get("/console/alerts?sort=host").text
    hosts = re.findall(r'<td>(ws-[ab])</td>', by_host)
    assert hosts == sorted(hosts) and 'aria-sort="ascending" data-sort="host"' in by_host
    bad = app_client.get("/console/alerts?sort=host;DROP TABLE alerts")
    assert bad.status_code == 200 and 'role="alert"' in bad.text and alert_ids(bad.text) == []
    events = app_client.get("/console/events?sort=-account").text
    assert 'data-sort="account"' in events and "<th aria-sort" in events


def test_acknowledge_start_close_in_place(app_client: TestClient, console_db: Database) -> None:
    seed(app_client, console_db)
    login(app_client, "zhang")
    token = csrf_of(app_client, "/console/alerts")
    first = alert_ids(app_client.get("/console/alerts").text)[0]
    form = {"csrf": token, "back": "/console/alerts"}
    answer = app_client.post(f"/console/alerts/{first}/acknowledge", data=form, headers=FETCH)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["ok"] and "已确认" in body["row"] and f'data-id="{first}"' in body["row"]
    assert "开始处置" in body["row"]  # the next action is offered in the row
    answer = app_client.post(f"/console/alerts/{first}/start", data=form, headers=FETCH)
    assert answer.json()["ok"] and "处置中" in answer.json()["row"]
    refused = app_client.post(f"/console/alerts/{first}/close",
                              data={**form, "resolution": "false_positive"}, headers=FETCH)
    assert refused.status_code == 422 and refused.json()["message"] == "请填写说明。"
    closed = app_client.post(f"/console/alerts/{first}/close", headers=FETCH, data={
        **form, "resolution": "false_positive", "comment": "测试"})
    assert closed.json()["ok"] and "已关闭" in closed.json()["row"]
    again = app_client.post(f"/console/alerts/{first}/acknowledge", data=form, headers=FETCH)
    assert again.status_code == 409 and "刷新" in again.json()["message"]
    # without the script: the row's button posts the list's form and lands on the list again
    second = alert_ids(app_client.get("/console/alerts").text)[0]
    plain = app_client.post(f"/console/alerts/{second}/acknowledge", follow_redirects=False,
                            data={**form, "ids": "999", "action": "close"})
    assert plain.status_code == 303 and plain.headers["location"] == "/console/alerts?done=1"
    unknown = app_client.post(f"/console/alerts/{second}/reopen", data=form, headers=FETCH)
    assert unknown.status_code == 404
    stale = app_client.post(f"/console/alerts/{second}/start", headers=FETCH,
                            data={"csrf": "stale", "back": "/console/alerts"})
    assert stale.status_code == 403


def test_auditor_has_no_actions(app_client: TestClient, console_db: Database) -> None:
    seed(app_client, console_db)
    login(app_client, "li")
    page = app_client.get("/console/alerts").text
    assert "quick-action" not in page and 'id="shortcuts"' not in page
    token = csrf_of(app_client, "/console/alerts")
    answer = app_client.post(f"/console/alerts/{alert_ids(page)[0]}/acknowledge",
                             data={"csrf": token}, headers=FETCH)
    assert answer.status_code == 403


def test_alert_page_names_people_translates_codes_and_shows_the_rule(
        app_client: TestClient, console_db: Database) -> None:
    users.create_user(console_db, "wang", "reviewer", PASSWORD, NOW, display_name="王五")
    seed(app_client, console_db)
    login(app_client, "wang")
    page = app_client.get("/console/alerts?rule_id=documents.resident-id").text
    (alert_id,) = alert_ids(page)
    form = {"csrf": csrf_of(app_client, "/console/alerts"), "back": "/console/alerts"}
    app_client.post(f"/console/alerts/{alert_id}/acknowledge", data=form, headers=FETCH)
    app_client.post(f"/console/alerts/{alert_id}/close", headers=FETCH, data={
        **form, "resolution": "true_positive", "comment": "已通知书记员"})
    detail = app_client.get(f"/console/alerts/{alert_id}").text
    assert "王五" in detail and "(wang)" in detail
    assert "closed:true_positive" not in detail and "已关闭（属实）" in detail
    assert "alert.close" not in detail and "needs_redaction" not in detail
    assert "需处理后公开" in detail  # the finding's verdict, inline
    assert "18 位居民身份证号码" in detail  # the rule's description in Chinese
    assert "法释〔2016〕19号第十条第一款第（一）项" in detail
    listing = app_client.get("/console/alerts?all=1").text
    assert "王五" in listing
    login(app_client, "admin1")
    trail = app_client.get("/console/audit?object_type=alert").text
    assert "王五 <span class=\"login\">(wang)</span>" in trail
    assert "已关闭（属实）" in trail and "closed:true_positive" not in trail


def test_grouped_list_links_to_each_group(app_client: TestClient, console_db: Database) -> None:
    seed(app_client, console_db)
    login(app_client, "zhang")
    page = app_client.get("/console/alerts?group=host").text
    groups = re.findall(r'<a href="([^"]+)">(ws-[ab])</a></td><td class="group-count">(\d+)',
                        page)
    assert [(host, int(n)) for _, host, n in groups] == [("ws-a", 3), ("ws-b", 1)]
    link = groups[0][0].replace("&amp;", "&")
    assert len(alert_ids(app_client.get(link).text)) == 3
    bad = app_client.get("/console/alerts?group=title")
    assert bad.status_code == 200 and 'role="alert"' in bad.text


def test_events_under_common_text_say_at_least(app_client: TestClient, console_db: Database,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Counts over the newest matches of common text are shown as lower bounds."""
    from collector.store import events, fulltext

    seed(app_client, console_db)
    login(app_client, "zhang")
    monkeypatch.setattr(fulltext, "COMMON_TEXT", 1)
    monkeypatch.setattr(events, "TEXT_COUNT_WINDOW", 2)
    page = app_client.get("/console/events", params={"q": "测试事件"}).text
    assert "至少" in page and "仅统计该关键词最近的匹配事件" in page
    listed = page.count('<tr>\n  <td class="nowrap">')
    assert 'id="counts"' in page and listed == 4  # every match is listed all the same
