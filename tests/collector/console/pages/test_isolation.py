"""The host page's isolation section: admins isolate and lift, others only see, text escaped."""

from __future__ import annotations

from collector.policy.signing import ensure_signing_key
from collector.settings import CollectorSettings
from collector.store.database import Database
from tests.collector.conftest import TestClient, enroll
from tests.collector.console.conftest import csrf_of, login


def test_an_admin_isolates_and_lifts_from_the_host_page(
    app_client: TestClient, console_db: Database, console_settings: CollectorSettings
) -> None:
    ensure_signing_key(console_settings.data_dir)
    agent = enroll(app_client, console_db)
    page = f"/console/hosts/{agent.agent_id}"
    login(app_client, "admin1")
    before = app_client.get(page)
    assert before.status_code == 200, before.text
    assert 'id="isolation-none"' in before.text and 'id="isolation-form"' in before.text
    csrf = csrf_of(app_client, page)
    done = app_client.post(f"{page}/isolation", data={
        "csrf": csrf, "op": "isolate", "minutes": "30", "reason": "<script>x</script>"},
        follow_redirects=False)
    assert done.status_code == 303
    during = app_client.get(page).text
    assert 'id="isolation-state" class="isolation-active">隔离中' in during
    assert "&lt;script&gt;x&lt;/script&gt;" in during and "<script>x</script>" not in during
    isolation_id = during.split('name="isolation_id" value="')[1].split('"')[0]
    lifted = app_client.post(f"{page}/isolation", data={
        "csrf": csrf, "op": "lift", "isolation_id": isolation_id}, follow_redirects=False)
    assert lifted.status_code == 303
    assert 'id="isolation-none"' in app_client.get(page).text


def test_a_reviewer_sees_no_isolation_form_and_cannot_post(
    app_client: TestClient, console_db: Database, console_settings: CollectorSettings
) -> None:
    ensure_signing_key(console_settings.data_dir)
    agent = enroll(app_client, console_db)
    page = f"/console/hosts/{agent.agent_id}"
    login(app_client, "zhang")
    shown = app_client.get(page).text
    assert 'id="isolation-none"' in shown and 'id="isolation-form"' not in shown
    refused = app_client.post(f"{page}/isolation", data={
        "csrf": csrf_of(app_client, page), "op": "isolate", "minutes": "30", "reason": "x"},
        follow_redirects=False)
    assert refused.status_code == 403


def test_a_bad_request_is_a_chinese_error_page(
    app_client: TestClient, console_db: Database, console_settings: CollectorSettings
) -> None:
    ensure_signing_key(console_settings.data_dir)
    agent = enroll(app_client, console_db)
    page = f"/console/hosts/{agent.agent_id}"
    login(app_client, "admin1")
    refused = app_client.post(f"{page}/isolation", data={
        "csrf": csrf_of(app_client, page), "op": "isolate", "minutes": "0", "reason": "x"})
    assert refused.status_code == 422
    assert "隔离时长须在 1 到 10080 分钟" in refused.text
