"""The console in a real headless Chromium against a real collector (HTTPS, SQLite).

A reviewer signs in, filters events, opens an event whose fields carry markup
and SQL (shown as text, no script runs), acknowledges and closes an alert; an
auditor sees the audit entries and downloads a report. Screenshots of the
main pages go to ``artifacts/console/`` (ignored by git) and the test's tmp dir.

Debian's chromium and chromium-driver drive it (scripts/test.sh installs them);
Selenium is pointed at /usr/bin/chromedriver so it never downloads a driver.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.events import uuid7
from tests.e2e.harness import Collector, wait_until

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "console"
PASSWORD = "correct horse battery"  # noqa: S105 (test data)
SCRIPT = "<script>window.__pwned = 1</script>"
IMG = '"><img src=x onerror="window.__pwned = 2">'
SQL = "x'; DROP TABLE events; --"


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Collector]:
    instance = Collector(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'collector.db'}")
    instance.init()
    for name, role in (("zhang", "reviewer"), ("li", "auditor")):
        result = subprocess_input(instance, "user", "create", name, "--role", role,
                                  "--password-stdin")
        assert result.returncode == 0, result.stderr
    instance.start()
    yield instance
    instance.stop()


def subprocess_input(collector: Collector, *args: str) -> Any:
    import subprocess

    from tests.e2e.harness import BIN

    return subprocess.run([str(BIN / "courtguard-collector"), *args], env=collector.env(),
                          input=PASSWORD + "\n", capture_output=True, text=True, timeout=60)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("chromium and chromium-driver are required on CI")
        pytest.skip("Debian's chromium and chromium-driver are not installed")
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never download anything
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--ignore-certificate-errors", "--window-size=1400,1000", "--lang=zh-CN"):
        options.add_argument(argument)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads), "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.implicitly_wait(10)  # find_element waits for the next page to have the element
    driver.downloads = downloads
    driver.shots = tmp_path / "screenshots"
    driver.shots.mkdir()
    yield driver
    driver.quit()


def shot(driver: Any, name: str) -> None:
    path = driver.shots / f"{name}.png"
    driver.save_screenshot(str(path))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, ARTIFACTS / path.name)


def seed(collector: Collector) -> None:
    """One agent's batch: two repeats of one document finding, and one hostile event."""
    with collector.http() as client:
        token = collector.create_token()
        enrolled = client.post("/api/v1/enroll", json={
            "token": token, "hostname": "ws-court-07", "agent_version": "0.1.0"}).json()
        agent_id = enrolled["agent_id"]
        now = datetime.now(UTC).isoformat()
        document = {"file_name": "判决书.docx", "sha256": "a" * 64, "size": 10,
                    "verdict": "do_not_publish", "profile": "spc-2016", "action": "block",
                    "basis": "身份证号未脱敏", "occurrences": [{"part": "body", "start": 1,
                    "end": 19, "excerpt": "1101**********1234"}], "occurrences_total": 1}

        def event(seq: int, **fields: Any) -> dict[str, Any]:
            return {"id": str(uuid7()), "seq": seq, "time": now, "agent_id": agent_id,
                    "host": "ws-court-07", **fields}

        batch = [
            event(1, kind="document.block", severity="high", rule_id="document.id_number",
                  summary="待发布文书含未脱敏身份证号", evidence=document),
            event(2, kind="document.block", severity="high", rule_id="document.id_number",
                  summary="待发布文书含未脱敏身份证号", evidence=document),
            event(3, kind="custom.probe", severity="medium", rule_id="custom.hostile",
                  summary=f"可疑 {SCRIPT} {SQL}",
                  evidence={"account": SQL, "note": IMG, "nested": {"<b>key</b>": SCRIPT}}),
        ]
        response = client.post(
            "/api/v1/events", json={"agent_id": agent_id, "sent_at": now, "events": batch},
            headers={"Authorization": f"Bearer {agent_id}:{enrolled['secret']}"})
        assert response.status_code == 200, response.text


def text_of(driver: Any, element_id: str) -> str:
    """The element's text, or "" while the page is being replaced (a stale element)."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        return str(driver.find_element(By.ID, element_id).text)
    except (StaleElementReferenceException, NoSuchElementException):
        return ""


def sign_in(driver: Any, base: str, user: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{base}/console/alerts")
    assert "/console/login" in driver.current_url
    driver.find_element(By.ID, "username").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login").click()
    wait_until(lambda: "/console/alerts" in driver.current_url, 10, "sign-in to finish")


def test_console_in_a_browser(console: Collector, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    seed(console)
    base = console.url
    browser.get(f"{base}/console/login")
    shot(browser, "01-login")
    sign_in(browser, base, "zhang")
    shot(browser, "02-alerts")
    assert "待发布文书含未脱敏身份证号" in browser.page_source

    # events: filter by rule, then by host; open the hostile event
    browser.get(f"{base}/console/events")
    browser.find_element(By.NAME, "rule_id").send_keys("custom.hostile")
    browser.find_element(By.ID, "apply-filter").click()
    wait_until(lambda: "rule_id=custom.hostile" in browser.current_url, 10, "the filter to apply")
    rows = browser.find_elements(By.CSS_SELECTOR, "#events tbody tr")
    assert len(rows) == 1
    shot(browser, "03-events-filtered")
    rows[0].find_element(By.TAG_NAME, "a").click()
    summary = browser.find_element(By.ID, "event-summary").text
    assert summary == f"可疑 {SCRIPT} {SQL}"
    evidence = browser.find_element(By.ID, "evidence").text
    assert IMG in evidence and SCRIPT in evidence and "<b>key</b>" in evidence
    assert browser.execute_script("return window.__pwned === undefined")
    assert browser.find_elements(By.CSS_SELECTOR, "main img, main script, main b") == []
    shot(browser, "04-event-hostile")

    # the document alert: acknowledge with an assignee, then close as a false positive
    browser.get(f"{base}/console/alerts?rule_id=document.id_number&all=1")
    browser.find_element(By.CSS_SELECTOR, "#alerts tbody tr a").click()
    assert "2" in browser.find_element(By.CSS_SELECTOR, "dl.facts").text
    Select(browser.find_element(By.NAME, "action")).select_by_value("acknowledge")
    browser.find_element(By.NAME, "assignee").send_keys("zhang")
    browser.find_element(By.ID, "triage-apply").click()
    wait_until(lambda: text_of(browser, "alert-assignee") == "zhang", 10,
               "acknowledge to finish")
    Select(browser.find_element(By.NAME, "action")).select_by_value("close")
    Select(browser.find_element(By.NAME, "resolution")).select_by_value("false_positive")
    browser.find_element(By.NAME, "comment").send_keys("测试文书，当事人为虚构")
    browser.find_element(By.ID, "triage-apply").click()
    wait_until(lambda: "已关闭" in text_of(browser, "alert-status"), 10, "close to show")
    shot(browser, "05-alert-closed")

    # the auditor: the audit trail shows the reviewer's close; the report downloads
    browser.find_element(By.ID, "logout").click()
    # the sign-out lands on a fresh sign-in form whose cookie a second form would race
    wait_until(lambda: "/console/login" in browser.current_url
               and browser.find_elements(By.ID, "login"), 10, "sign-out to finish")
    sign_in(browser, base, "li")
    browser.get(f"{base}/console/audit?actor=zhang")
    audit = browser.find_element(By.ID, "audit").text
    assert "关闭 alert.close" in audit and "已关闭（误报）" in audit  # the code in words
    assert "测试文书，当事人为虚构" in audit
    shot(browser, "06-audit")
    browser.get(f"{base}/console/users")
    assert "无权" in browser.page_source  # the auditor may not manage users
    browser.get(f"{base}/console/agents")
    assert "ws-court-07" in browser.find_element(By.ID, "agents").text
    shot(browser, "07-agents")
    browser.get(f"{base}/console/reports")
    assert browser.find_element(By.ID, "outreach-incidents").text == "0"
    shot(browser, "08-report")
    browser.find_element(By.ID, "download-csv").click()

    def downloaded() -> Path | None:
        files = [f for f in browser.downloads.glob("*.csv")]
        return files[0] if files else None

    csv_file = wait_until(downloaded, 15, "the CSV report to download")
    time.sleep(0.2)
    text = csv_file.read_text(encoding="utf-8-sig")
    assert "alerts_by_status,closed,1" in text
    assert "top_hosts,ws-court-07,3" in text

    # English is one click away
    browser.get(f"{base}/console/lang/en?next=/console/alerts")
    assert "Alerts" in browser.find_element(By.TAG_NAME, "h1").text


def test_console_pages_need_a_session(console: Collector) -> None:
    """Over real HTTPS: no cookie, no page; the session cookie is HttpOnly, Secure, SameSite."""
    with console.http() as client:
        response = client.get("/console/events", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/console/login")
        page = client.get("/console/login")
        import re

        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token is not None
        signed = client.post("/console/login", data={
            "username": "zhang", "password": PASSWORD, "csrf": token.group(1)},
            follow_redirects=False)
        assert signed.status_code == 303
        cookie = signed.headers["set-cookie"].lower()
        assert "httponly" in cookie and "secure" in cookie and "samesite=strict" in cookie
    with httpx.Client(base_url=console.url, verify=console.ssl_context()) as anonymous:
        assert anonymous.get("/api/v1/alerts").status_code == 401
