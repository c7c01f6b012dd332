"""Triage from the alert list in a real headless Chromium against a real collector (HTTPS).

Counts the interactions a reviewer needs from the list: acknowledge (one key),
start (one key), close with a resolution (c, a digit, the comment, Enter),
all without a page reload; j/k move the selection; column headers sort; the
list groups by host. Screenshots go to ``artifacts/console/`` like the other
console browser test's.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.events import uuid7
from tests.e2e.harness import Collector, wait_until
from tests.e2e.test_console_browser import browser, shot, sign_in, subprocess_input

pytestmark = pytest.mark.e2e
__all__ = ["browser"]  # the Chromium fixture, shared with the other console browser test


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Collector]:
    instance = Collector(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'collector.db'}")
    instance.init()
    result = subprocess_input(instance, "user", "create", "zhang", "--role", "reviewer",
                              "--display-name", "张伟", "--password-stdin")
    assert result.returncode == 0, result.stderr
    instance.start()
    yield instance
    instance.stop()


def seed(collector: Collector) -> None:
    """Five alerts: the newest is the least severe, so "highs on top" is visible."""
    with collector.http() as client:
        enrolled = client.post("/api/v1/enroll", json={
            "token": collector.create_token(), "hostname": "ws-court-01",
            "agent_version": "0.1.0"}).json()
        agent_id = enrolled["agent_id"]
        now = datetime.now(UTC)
        batch = []
        for seq, (severity, host) in enumerate((
                ("critical", "ws-court-02"), ("high", "ws-court-01"), ("medium", "ws-court-03"),
                ("high", "ws-court-02"), ("low", "ws-court-01")), start=1):
            batch.append({
                "id": str(uuid7()), "seq": seq, "agent_id": agent_id, "host": host,
                "time": (now - timedelta(minutes=10 - seq)).isoformat(),
                "kind": "custom.probe", "severity": severity, "rule_id": f"custom.rule-{seq}",
                "summary": f"测试告警 {seq}", "evidence": {"account": f"wb_{seq % 2:02d}"}})
        response = client.post(
            "/api/v1/events", json={"agent_id": agent_id, "sent_at": now.isoformat(),
                                    "events": batch},
            headers={"Authorization": f"Bearer {agent_id}:{enrolled['secret']}"})
        assert response.status_code == 200, response.text


def rows(driver: Any) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, "#alerts tbody tr.alert-row"))


def row_state(driver: Any, index: int) -> tuple[str, str, bool]:
    """(status text, assignee text, selected) of the list's row ``index``, read in one go."""
    return tuple(driver.execute_script(
        "var r = document.querySelectorAll('#alerts tbody tr.alert-row')[arguments[0]];"
        "return [r.querySelector('.status-cell').innerText, "
        "r.querySelector('.assignee-cell').innerText, r.classList.contains('selected')];",
        index))


def test_keyboard_triage_from_the_list(console: Collector, browser: Any) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    seed(console)
    sign_in(browser, console.url, "zhang")
    browser.get(f"{console.url}/console/alerts")
    severities = [r.get_attribute("innerHTML").split("sev sev-")[1].split('"')[0]
                  for r in rows(browser)]
    assert severities == ["critical", "high", "high", "medium", "low"]
    assert "a 确认" in browser.find_element(By.ID, "shortcuts").text
    shot(browser, "11-triage-list")
    browser.execute_script("window.__samePage = true")
    interactions = 0

    def press(keys: str) -> None:
        nonlocal interactions
        interactions += 1
        ActionChains(browser).send_keys(keys).perform()

    # the first row is selected: acknowledge it with one key
    assert row_state(browser, 0)[2]
    press("a")
    wait_until(lambda: row_state(browser, 0)[0] == "已确认", 10, "acknowledge in place")
    assert interactions == 1 and "张伟" in row_state(browser, 0)[1]
    press("s")
    wait_until(lambda: row_state(browser, 0)[0] == "处置中", 10, "start in place")
    assert interactions == 2
    # close with a resolution: c, 2 (误报), the comment, Enter
    interactions = 0
    press("c")
    press("2")
    press("演练数据，非真实外联")
    press("\n")
    wait_until(lambda: row_state(browser, 0)[0] == "已关闭", 10, "close in place")
    assert interactions == 4
    shot(browser, "12-triage-closed-in-place")
    # j / k move the selection; a on the second row acknowledges that one
    press("j")
    assert row_state(browser, 1)[2] and not row_state(browser, 0)[2]
    press("j")
    press("k")
    assert row_state(browser, 1)[2]
    press("a")
    wait_until(lambda: row_state(browser, 1)[0] == "已确认", 10, "acknowledge the second row")
    # one click on a row's own button
    rows(browser)[2].find_element(By.CSS_SELECTOR, "button.quick-action").click()
    wait_until(lambda: row_state(browser, 2)[0] == "已确认", 10, "acknowledge by mouse")
    assert browser.execute_script("return window.__samePage === true"), "the page reloaded"
    assert browser.find_element(By.ID, "triage-status").text.startswith("告警 #")

    # the audit trail on the alert page: names and words, not logins and codes
    browser.get(f"{console.url}/console/alerts?all=1&status=closed")
    rows(browser)[0].find_element(By.CSS_SELECTOR, "a.open").click()
    history = browser.find_element(By.ID, "history").text
    assert "张伟" in history and "已关闭（误报）" in history and "closed:" not in history
    shot(browser, "13-alert-history")

    # sorting: the header sorts by host, again reverses it
    browser.get(f"{console.url}/console/alerts?all=1")
    browser.find_element(By.CSS_SELECTOR, 'th[data-sort="host"] a').click()
    wait_until(lambda: "sort=host" in browser.current_url, 10, "the sort to apply")
    hosts = [r.find_elements(By.TAG_NAME, "td")[5].text for r in rows(browser)]
    assert hosts == sorted(hosts)
    browser.find_element(By.CSS_SELECTOR, 'th[data-sort="host"] a').click()
    wait_until(lambda: "sort=-host" in browser.current_url, 10, "the order to reverse")
    hosts = [r.find_elements(By.TAG_NAME, "td")[5].text for r in rows(browser)]
    assert hosts == sorted(hosts, reverse=True)
    shot(browser, "14-sorted-by-host")
    browser.get(f"{console.url}/console/events")
    browser.find_element(By.CSS_SELECTOR, 'th[data-sort="account"] a').click()
    wait_until(lambda: "sort=account" in browser.current_url, 10, "the events sort")
    accounts = [r.find_elements(By.TAG_NAME, "td")[3].text
                for r in browser.find_elements(By.CSS_SELECTOR, "#events tbody tr")]
    assert accounts == sorted(accounts) and "wb_01" in accounts
    shot(browser, "15-events-by-account")

    # grouped by host, with counts
    browser.get(f"{console.url}/console/alerts?all=1&group=host")
    groups = {r.find_elements(By.TAG_NAME, "td")[0].text: r.find_elements(By.TAG_NAME, "td")[1].text
              for r in browser.find_elements(By.CSS_SELECTOR, "#groups tbody tr")}
    assert groups == {"ws-court-01": "2", "ws-court-02": "2", "ws-court-03": "1"}
    shot(browser, "16-grouped-by-host")
