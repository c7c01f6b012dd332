"""Values beyond what the store holds or datetime arithmetic survives get a 4xx, never a 500.

Each case was a 500 once: an id past 64 bits, a time or date at the edge of
``datetime``'s range, a NUL character PostgreSQL refuses, a non-ASCII secret
``hmac.compare_digest`` refused. They run on SQLite and PostgreSQL, whose
limits differ.
"""

from __future__ import annotations

from typing import Any

import pytest

from collector.console import users
from collector.store.database import Database
from tests.collector.conftest import TestClient

#: Each (path, the parameter the 422 names).
API_REFUSALS = [
    ("/api/v1/alerts/99999999999999999999", "alert_id"),
    ("/api/v1/alerts/9223372036854775808", "alert_id"),
    ("/api/v1/events?since=0001-01-01T00:00%2B01:00", "since"),
    ("/api/v1/events?until=9999-12-31T23:59-05:00", "until"),
    ("/api/v1/alerts?since=0001-01-01T00:00%2B01:00", "since"),
    ("/api/v1/alerts?until=9999-12-31T23:59-05:00", "until"),
    ("/api/v1/audit?since=0001-01-01T00:00%2B01:00", "since"),
    ("/api/v1/audit?until=9999-12-31T23:59-05:00", "until"),
    ("/api/v1/reports/summary?date=9999-12-31", "date"),
    ("/api/v1/reports/summary?date=9999-12-31&period=month", "date"),
    ("/api/v1/reports/summary?date=0001-01-01", "date"),
    ("/api/v1/duty?at=9999-12-31T23:00:00", "at"),
    ("/api/v1/duty?at=0001-01-01T00:00:00%2B01:00", "at"),
    ("/api/v1/events?host=a%00b", "host"),
    ("/api/v1/alerts?q=a%00b", "q"),
    ("/api/v1/audit?actor=a%00b", "actor"),
    # a cursor holding a time at the edge of the range, or an id past 64 bits
    ("/api/v1/events?cursor=WyI5OTk5LTEyLTMxVDIzOjAwOjAwLTA1OjAwIiwiMDE5MGEwYTAtMDAwMC03MDAw"
     "LTgwMDAtMDAwMDAwMDAwMDAwIl0", "cursor"),
    ("/api/v1/alerts?cursor=WyI5OTk5LTEyLTMxVDIzOjAwOjAwLTA1OjAwIiwxXQ", "cursor"),
    ("/api/v1/audit?cursor=WzE4NDQ2NzQ0MDczNzA5NTUxNjE1XQ", "cursor"),
    ("/api/v1/ack/99999999999999999999?by=x&exp=9999999999&sig=a", "alert_id"),
]


@pytest.mark.parametrize(("path", "field"), API_REFUSALS)
def test_out_of_range_values_are_422(client: TestClient, admin: dict[str, str], path: str,
                                     field: str) -> None:
    """An id, time, date or text the store cannot take is a 422 naming the parameter."""
    response = client.get(path, headers=admin)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_request"
    named = [e["loc"][-1] for e in body.get("errors", [])] or [body["detail"].split(":")[0]]
    assert field in named, body


@pytest.mark.parametrize("path", ["/api/v1/silences/a%00b", "/api/v1/silences/x?reason=a%00b"])
def test_nul_in_a_silence_is_422(client: TestClient, admin: dict[str, str], path: str) -> None:
    """Expiring a silence with NUL in its id or reason is a 422."""
    response = client.delete(path, headers=admin)
    assert (response.status_code, response.json()["error"]) == (422, "invalid_request")


@pytest.mark.parametrize("body", [
    {"ids": [2**63]}, {"ids": [1], "comment": "a\x00b"}, {"ids": [1], "reason": "\x00"},
])
def test_alert_action_body_out_of_range_is_422(client: TestClient, admin: dict[str, str],
                                               body: dict[str, Any]) -> None:
    """Triage with an id past 64 bits or NUL in its text is a 422, before the store."""
    response = client.post("/api/v1/alerts/acknowledge", json=body, headers=admin)
    assert (response.status_code, response.json()["error"]) == (422, "invalid_request")


def test_silence_body_with_nul_is_422(client: TestClient, admin: dict[str, str]) -> None:
    response = client.post("/api/v1/silences", json={"comment": "\x00"}, headers=admin)
    assert (response.status_code, response.json()["error"]) == (422, "invalid_request")


@pytest.mark.parametrize("sig", ["%C3%A9", "%E2%80%8B" * 64, "%00"])
def test_ack_link_with_a_non_ascii_signature_is_refused(client: TestClient, sig: str) -> None:
    """The confirmation page refuses a signature of any characters with 403, in Chinese."""
    response = client.get(f"/api/v1/ack/1?by=x&exp=9999999999&sig={sig}")
    assert response.status_code == 403, response.text
    assert "链接签名无效" in response.text
    confirm = client.post("/api/v1/ack/1", content=f"by=x&exp=9999999999&sig={sig}",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert confirm.status_code == 403, confirm.text
    assert "链接签名无效" in confirm.text


def test_ack_with_an_expiry_past_64_bits_is_400(client: TestClient) -> None:
    response = client.post("/api/v1/ack/1", content=f"by=x&exp={2**64}&sig=ab",
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400, response.text
    assert "链接参数不完整" in response.text


@pytest.fixture
def signed_in(client: TestClient, db: Database) -> TestClient:
    from datetime import UTC, datetime

    from tests.collector.console.conftest import PASSWORD, login

    users.create_user(db, "admin1", "admin", PASSWORD, datetime.now(UTC))
    assert login(client, "admin1").status_code == 303
    return client


def test_console_alert_past_64_bits_is_a_chinese_page(signed_in: TestClient) -> None:
    """The console answers an alert id no store holds with its own 422 page, in Chinese."""
    response = signed_in.get("/console/alerts/99999999999999999999")
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    assert "地址中的参数无效：alert_id。" in response.text


@pytest.mark.parametrize("path", [
    "/console/events?since=0001-01-01T00:00", "/console/alerts?until=0001-01-01T00:00",
    "/console/audit?until=9999-12-31T23:59-05:00", "/console/events?host=%00",
])
def test_console_lists_show_an_out_of_range_filter(signed_in: TestClient, path: str) -> None:
    """A list page shows the bad filter's error where it shows every other one."""
    response = signed_in.get(path)
    assert response.status_code == 200
    assert 'class="error"' in response.text


@pytest.mark.parametrize("path", ["/console/reports?date=9999-12-31",
                                  "/console/reports.csv?date=0001-01-01&period=month"])
def test_console_report_out_of_range_is_422(signed_in: TestClient, path: str) -> None:
    response = signed_in.get(path)
    assert response.status_code == 422
    assert "date: must be between 1970-01-01 and 9000-01-01" in response.text


def test_console_form_with_nul_is_422(signed_in: TestClient) -> None:
    """A console form field holding NUL is refused before it reaches the store."""
    from tests.collector.console.conftest import csrf_of

    response = signed_in.post("/console/filters", data={
        "csrf": csrf_of(signed_in), "scope": "events", "name": "a\x00", "query": "host=a"})
    assert (response.status_code, response.json()["error"]) == (422, "invalid_request")


@pytest.mark.parametrize("form", [
    {"username": "admin1", "password": "x", "csrf": "é"},
    {"username": "a\x00", "password": "x", "csrf": "token"},
])
def test_sign_in_with_odd_characters_is_refused(client: TestClient,
                                                form: dict[str, str]) -> None:
    """A non-ASCII form token or a NUL in the user name is a refused sign-in, not a 500."""
    client.cookies.set("cg_login", "token", path="/console/login")
    response = client.post("/console/login", data=form)
    assert response.status_code in (401, 403), response.text
    assert "登录" in response.text


def test_csrf_header_with_non_ascii_is_403(signed_in: TestClient) -> None:
    response = signed_in.post("/api/v1/alerts/acknowledge", json={"ids": [1]},
                              headers={"X-CSRF-Token": "é".encode()})
    assert (response.status_code, response.json()["error"]) == (403, "csrf_failed")
