"""The event page's capture section: an admin orders a capture and downloads the pcap, audited."""

from __future__ import annotations

import hashlib

import sqlalchemy as sa

from collector.store.database import Database
from collector.store.tables import audit_log
from tests.collector.conftest import TestClient, enroll, event, post_events
from tests.collector.console.conftest import csrf_of, login

PCAP = b"\xd4\xc3\xb2\xa1" + bytes(range(256)) * 8


def _flow_event(client: TestClient, db: Database) -> tuple[str, dict[str, str]]:
    agent = enroll(client, db)
    body = event(agent.agent_id, 1, kind="test.flow", severity="high",
                 evidence={"remote_address": "203.0.113.10", "interface": "usb0"})
    assert post_events(client, agent, [body]).status_code == 200
    return str(body["id"]), agent.headers()


def _upload(client: TestClient, event_id: str, headers: dict[str, str]) -> None:
    declared = client.post(f"/api/v1/evidence/{event_id}", headers=headers, json={
        "size": len(PCAP), "sha256": hashlib.sha256(PCAP).hexdigest(), "packets": 4})
    assert declared.status_code == 200, declared.text
    done = client.put(f"/api/v1/evidence/{event_id}", params={"offset": 0}, content=PCAP,
                      headers={**headers, "Content-Type": "application/octet-stream"})
    assert done.json()["complete"] is True


def test_admin_orders_a_capture_from_the_event_page(
    app_client: TestClient, console_db: Database
) -> None:
    """The form orders the capture, the page says so in Chinese and shows it waiting for the
    agent; a second order is refused with the reason."""
    event_id, _ = _flow_event(app_client, console_db)
    login(app_client, "admin1")
    page = app_client.get(f"/console/events/{event_id}")
    assert 'id="capture-form"' in page.text and "抓包取证" in page.text
    token = csrf_of(app_client, f"/console/events/{event_id}")
    ordered = app_client.post(f"/console/events/{event_id}/capture",
                              data={"csrf": token, "duration_s": "15", "reason": "核查"})
    assert ordered.status_code == 200
    assert "已下发抓包取证指令" in ordered.text and "已下令，等待终端执行" in ordered.text
    again = app_client.post(f"/console/events/{event_id}/capture",
                            data={"csrf": token, "duration_s": "15"})
    assert "该事件已有抓包取证" in again.text


def test_download_from_the_event_page_is_audited(
    app_client: TestClient, console_db: Database
) -> None:
    """A verified pcap: the admin's link serves its bytes, each download is audited with the
    admin's name; a reviewer sees the hash but no link and is refused the file."""
    event_id, headers = _flow_event(app_client, console_db)
    _upload(app_client, event_id, headers)
    login(app_client, "admin1")
    page = app_client.get(f"/console/events/{event_id}").text
    assert 'id="artifact-download"' in page and hashlib.sha256(PCAP).hexdigest() in page
    pcap = app_client.get(f"/console/events/{event_id}/evidence.pcap")
    assert pcap.status_code == 200 and pcap.content == PCAP
    assert "attachment" in pcap.headers["content-disposition"]
    with console_db.read() as conn:
        rows = conn.execute(sa.select(audit_log.c.actor, audit_log.c.object_id).where(
            audit_log.c.action == "evidence.download")).all()
    assert [tuple(r) for r in rows] == [("admin1", event_id)]
    app_client.post("/console/logout", data={"csrf": csrf_of(app_client)})
    login(app_client, "zhang")
    page = app_client.get(f"/console/events/{event_id}").text
    assert 'id="artifact-download"' not in page and 'id="capture-form"' not in page
    refused = app_client.get(f"/console/events/{event_id}/evidence.pcap")
    assert refused.status_code == 403 and refused.content != PCAP
