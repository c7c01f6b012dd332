"""Host isolation from the host page in a real headless Chromium against a real collector.

Two admins, with the second-admin switch on: admin A asks for the isolation,
cannot approve it, admin B approves it, then A lifts it; the agent's order
endpoint serves each signed order. Screenshots go to ``artifacts/console/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import Collector
from tests.e2e.test_console_browser import browser, shot, sign_in, subprocess_input

pytestmark = pytest.mark.e2e
__all__ = ["browser"]  # the Chromium fixture, shared with the other console browser tests


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Collector]:
    instance = Collector(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'collector.db'}",
                         extra_env={"COURTGUARD_COLLECTOR_ISOLATION_REQUIRES_APPROVAL": "true"})
    instance.init()
    for name in ("wangqiang", "liuyang"):
        result = subprocess_input(instance, "user", "create", name, "--role", "admin",
                                  "--password-stdin")
        assert result.returncode == 0, result.stderr
    instance.start()
    yield instance
    instance.stop()


def enroll(collector: Collector) -> dict[str, str]:
    with collector.http() as client:
        enrolled: dict[str, str] = client.post("/api/v1/enroll", json={
            "token": collector.create_token(), "hostname": "ws-court-09",
            "agent_version": "0.1.0"}).json()
    return enrolled


def served_order(collector: Collector, agent: dict[str, str]) -> Any:
    with collector.http() as client:
        return client.get("/api/v1/isolation", headers={
            "Authorization": f"Bearer {agent['agent_id']}:{agent['secret']}"})


def switch_user(driver: Any, base: str, user: str) -> None:
    driver.delete_all_cookies()
    sign_in(driver, base, user)


def test_admins_isolate_approve_and_lift_from_the_host_page(
    console: Collector, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    agent = enroll(console)
    base, host_page = console.url, f"{console.url}/console/hosts/{agent['agent_id']}"
    sign_in(browser, base, "wangqiang")
    browser.get(host_page)
    assert browser.find_element(By.ID, "isolation-none").text == "未隔离。"
    minutes = browser.find_element(By.ID, "isolation-minutes")
    minutes.clear()
    minutes.send_keys("45")
    browser.find_element(By.ID, "isolation-reason-input").send_keys("疑似 4G 网卡外联<b>x</b>")
    shot(browser, "21-isolation-form")
    browser.find_element(By.ID, "isolation-submit").click()
    assert browser.find_element(By.ID, "isolation-state").text == "待批准"
    # The reason is shown as text, never as markup.
    assert browser.find_element(By.ID, "isolation-reason").text == "疑似 4G 网卡外联<b>x</b>"
    assert browser.find_elements(By.ID, "isolation-approve") == []  # not one's own
    assert served_order(console, agent).status_code == 404
    shot(browser, "22-isolation-pending")

    switch_user(browser, base, "liuyang")
    browser.get(host_page)
    browser.find_element(By.ID, "isolation-approve").click()
    assert browser.find_element(By.ID, "isolation-state").text == "隔离中"
    assert "wangqiang" in browser.find_element(By.ID, "isolation-requested-by").text
    order = served_order(console, agent).json()
    assert order["action"] == "isolate" and order["approved_by"] == "liuyang"
    shot(browser, "23-isolation-active")

    switch_user(browser, base, "wangqiang")
    browser.get(host_page)
    browser.find_element(By.ID, "isolation-lift-reason").send_keys("排查完毕")
    browser.find_element(By.ID, "isolation-lift").click()
    assert browser.find_element(By.ID, "isolation-none").text == "未隔离。"
    history = browser.find_element(By.ID, "isolation-history").text
    assert "已解除" in history and "liuyang" in history
    lift = served_order(console, agent).json()
    assert lift["action"] == "lift" and lift["sequence"] > order["sequence"]
    shot(browser, "24-isolation-lifted")
    with console.http() as client:
        audit = client.get("/api/v1/audit", params={"object_type": "host_isolation"},
                           headers={"Authorization": f"Bearer {console.admin_key}"}).json()
    entries = audit["entries"]
    assert [(e["action"], e["actor"]) for e in reversed(entries)] == [
        ("isolation.request", "wangqiang"), ("isolation.approve", "liuyang"),
        ("isolation.lift", "wangqiang")]
