"""The overview and the entity pages in a real headless Chromium against a real collector.

One collector (HTTPS, SQLite, the shipped policies) and one browser serve the
module. A reviewer keeps the overview open while a critical outreach event is
ingested through the real API: the alert appears without a reload (the page's
own marker survives). The host and account pages are opened from the
overview's links; the overview is printed through Chromium's
``Page.printToPDF`` and must fit one A4 page. Screenshots and the PDF go to
``artifacts/console/``.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.events import uuid7
from tests.e2e.harness import Collector, stop_process, wait_until
from tests.e2e.test_console_browser import ARTIFACTS, CHROMEDRIVER, CHROMIUM, subprocess_input

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery"  # noqa: S105 (test data)
A4_WIDTH_IN, A4_HEIGHT_IN = 8.27, 11.69


class Site:
    """The collector, its enrolled agents and a way to send their events."""

    def __init__(self, collector: Collector) -> None:
        self.collector = collector
        self.agents: dict[str, dict[str, Any]] = {}
        self.seq: dict[str, int] = {}

    def enroll(self, hostname: str) -> str:
        with self.collector.http() as client:
            enrolled = client.post("/api/v1/enroll", json={
                "token": self.collector.create_token(), "hostname": hostname,
                "agent_version": "0.3.0"}).json()
        self.agents[hostname] = enrolled
        self.seq[hostname] = 0
        return str(enrolled["agent_id"])

    def send(self, hostname: str, *events: dict[str, Any]) -> None:
        agent = self.agents[hostname]
        now = datetime.now(UTC).isoformat()
        batch = []
        for fields in events:
            self.seq[hostname] += 1
            batch.append({"id": str(uuid7()), "seq": self.seq[hostname], "time": now,
                          "agent_id": agent["agent_id"], "host": hostname, **fields})
        with self.collector.http() as client:
            response = client.post(
                "/api/v1/events", json={"agent_id": agent["agent_id"], "sent_at": now,
                                        "events": batch},
                headers={"Authorization": f"Bearer {agent['agent_id']}:{agent['secret']}"})
        assert response.status_code == 200, response.text


def _seen() -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    return {"first_seen": now, "last_seen": now, "count": 1}


def flow(remote: str, severity: str, summary: str, rule: str = "outreach.flow-outside"
         ) -> dict[str, Any]:
    return {"kind": "outreach.flow", "severity": severity, "rule_id": rule, "summary": summary,
            "evidence": {**_seen(), "interface": "wwan0", "protocol": "tcp",
                         "local_address": "10.20.0.5", "remote_address": remote,
                         "remote_port": 443}}


def session(account: str, action: str, session_id: str) -> dict[str, Any]:
    return {"kind": "account.session", "severity": "info", "summary": f"外包账号会话 {action}",
            "evidence": {"account": account, "role": "maintenance",
                         "sponsor": "信息技术处 王强", "action": action,
                         "session_id": session_id, "service": "sshd",
                         "remote_host": "198.51.100.20"}}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    home = tmp_path_factory.mktemp("overview")
    instance = Collector(home=home, database_url=f"sqlite:///{home / 'collector.db'}")
    # Longer than the harness waits for a stop: a change stream holding the shutdown open
    # would get the collector killed instead of letting it exit.
    instance.extra_env["COURTGUARD_COLLECTOR_GRACEFUL_SHUTDOWN_S"] = "600"
    instance.init()
    result = subprocess_input(instance, "user", "create", "zhang", "--role", "reviewer",
                              "--password-stdin")
    assert result.returncode == 0, result.stderr
    instance.start()
    seeded = Site(instance)
    for index in range(1, 4):
        seeded.enroll(f"ws-court-{index:02d}")
    seeded.send("ws-court-01",
                {"kind": "outreach.interface", "severity": "high",
                 "rule_id": "outreach.new-interface", "summary": "出现蜂窝网卡 wwan0",
                 "evidence": {**_seen(), "interface": "wwan0", "interface_class": "cellular",
                              "interface_mac": "02:00:00:00:00:01"}},
                session("wb_zhao", "open", "s-1"),
                *(flow(f"203.0.113.{i}", "high", f"访问互联网地址 203.0.113.{i}",
                       rule=f"outreach.flow-{i}") for i in range(1, 10)))
    seeded.send("ws-court-02", session("wb_zhao", "open", "s-2"),
                {"kind": "account.privilege", "severity": "medium", "rule_id": "accounts.sudo",
                 "summary": "外包账号使用 sudo",
                 "evidence": {"account": "wb_zhao", "tool": "sudo", "outcome": "success",
                              "target": "root", "command": "/usr/bin/systemctl restart x"}})
    document = {"file_name": "（2026）民初123号判决书.docx", "sha256": "d" * 64, "size": 10,
                "verdict": "do_not_publish", "profile": "spc-2016", "action": "block",
                "basis": "身份证号未脱敏", "occurrences": [], "occurrences_total": 1}
    seeded.send("ws-court-03", {"kind": "document.block", "severity": "high",
                                "rule_id": "document.id_number",
                                "summary": "待发布文书含未脱敏身份证号", "evidence": document})
    yield seeded
    instance.stop()


@pytest.fixture(scope="module")
def browser(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    import os

    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("chromium and chromium-driver are required on CI")
        pytest.skip("Debian's chromium and chromium-driver are not installed")
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never download anything
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--ignore-certificate-errors", "--window-size=1400,1000", "--lang=zh-CN"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.implicitly_wait(10)
    driver.shots = tmp_path_factory.mktemp("screenshots")
    base = site.collector.url
    driver.get(f"{base}/console/login")
    driver.find_element(By.ID, "username").send_keys("zhang")
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login").click()
    wait_until(lambda: "/console/overview" in driver.current_url, 10,
               "sign-in to land on the overview")
    yield driver
    driver.quit()  # before the collector stops: its change stream must not be what stops it


def shot(driver: Any, name: str) -> Path:
    path = Path(driver.shots) / f"{name}.png"
    driver.save_screenshot(str(path))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, ARTIFACTS / path.name)
    return path


def text_of(driver: Any, css: str) -> str:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        return str(driver.find_element(By.CSS_SELECTOR, css).text)
    except (NoSuchElementException, StaleElementReferenceException):
        return ""


def test_a_critical_alert_appears_without_a_reload(site: Site, browser: Any) -> None:
    browser.get(f"{site.collector.url}/console/overview")
    wait_until(lambda: "on" in (browser.find_element("id", "live-state").get_attribute("class")
                                or ""), 10, "the overview's change stream to open")
    assert text_of(browser, "#ov-open-outreach-critical") == "0"
    browser.execute_script("window.__sameDocument = 'still here';")
    shot(browser, "overview-01-before")

    title = "终端通过蜂窝网卡访问境外地址 198.51.100.77"
    site.send("ws-court-02", flow("198.51.100.77", "critical", title))
    sent = time.monotonic()
    wait_until(lambda: title in text_of(browser, "#ov-latest"), 10,
               "the critical alert to appear on the open overview")
    print(f"critical alert shown {time.monotonic() - sent:.3f} s after ingest returned")
    assert browser.execute_script("return window.__sameDocument") == "still here"
    assert text_of(browser, "#ov-open-outreach-critical") == "1"
    first_row = text_of(browser, "#ov-latest tbody tr:first-child")
    assert title in first_row and "严重" in first_row
    shot(browser, "overview-02-critical-arrived")


def test_host_and_account_pages(site: Site, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{site.collector.url}/console/overview")
    browser.find_element(By.LINK_TEXT, "ws-court-01").click()
    wait_until(lambda: "/console/hosts/" in browser.current_url, 10, "the host page to open")
    assert text_of(browser, "#host-name") == "ws-court-01"
    assert text_of(browser, "#host-status") == "在线"
    interfaces = text_of(browser, "#host-interfaces")
    assert "wwan0" in interfaces and "cellular" in interfaces
    assert "wb_zhao" in text_of(browser, "#host-sessions")
    assert "outreach.flow" in text_of(browser, "#timeline")
    shot(browser, "host-01")
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element(By.NAME, "pillar")).select_by_value("account")
    browser.find_element(By.ID, "apply-timeline-filter").click()
    wait_until(lambda: "pillar=account" in browser.current_url, 10, "the filter to apply")
    timeline = text_of(browser, "#timeline")
    assert "account.session" in timeline and "outreach.flow" not in timeline
    shot(browser, "host-02-account-pillar")

    browser.find_element(By.CSS_SELECTOR, "#host-sessions a").click()
    wait_until(lambda: "/console/accounts/wb_zhao" in browser.current_url, 10,
               "the account page to open")
    assert text_of(browser, "#account-name") == "wb_zhao"
    assert text_of(browser, "#account-sponsor") == "信息技术处 王强"
    hosts = text_of(browser, "#account-hosts")
    assert "ws-court-01" in hosts and "ws-court-02" in hosts
    assert "/usr/bin/systemctl restart x" in text_of(browser, "#account-privileges")
    shot(browser, "account-01")

    browser.get(f"{site.collector.url}/console/documents/{'d' * 64}")
    assert "（2026）民初123号判决书.docx" in text_of(browser, "#document-names")
    assert "ws-court-03" in text_of(browser, "#document-hosts")
    shot(browser, "document-01")


def test_the_overview_prints_on_one_a4_page(site: Site, browser: Any) -> None:
    from pypdf import PdfReader

    browser.get(f"{site.collector.url}/console/overview")
    assert len(browser.find_elements("css selector", "#ov-latest tbody tr")) >= 8
    printed = browser.execute_cdp_cmd("Page.printToPDF", {
        "paperWidth": A4_WIDTH_IN, "paperHeight": A4_HEIGHT_IN, "preferCSSPageSize": True,
        "printBackground": True})
    pdf = base64.b64decode(printed["data"])
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "overview-a4.pdf").write_bytes(pdf)
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (595, 842)  # A4 in points
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        shot(browser, "overview-03-print-media")
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})


def _next_change(lines: Iterator[str]) -> int:
    """The cursor of the stream's next ``change`` message."""
    event = ""
    for line in lines:
        if line.startswith("event: "):
            event = line[len("event: "):]
        elif line.startswith("data: ") and event == "change":
            return int(json.loads(line[len("data: "):])["cursor"])
    raise AssertionError("the change stream ended")


def test_the_change_stream_reports_ingest_and_ends_when_the_server_stops(
        site: Site, browser: Any) -> None:
    """Runs last: it stops the module's collector, which an open stream must not hold up."""
    import httpx

    collector = site.collector
    session = browser.get_cookie("cg_session")["value"]
    stopped: list[int] = []
    with httpx.Client(base_url=collector.url, verify=collector.ssl_context(),
                      cookies={"cg_session": session}, timeout=30) as client, \
            client.stream("GET", "/console/overview/stream") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert "connect-src 'self'" in response.headers["content-security-policy"]
        lines = response.iter_lines()
        first = _next_change(lines)
        site.send("ws-court-03", flow("198.51.100.78", "critical", "又一次境外访问"))
        assert _next_change(lines) > first
        process = collector.process
        assert process is not None
        stopper = threading.Thread(target=lambda: stopped.append(stop_process(process)))
        stopper.start()
        rest = list(lines)  # the server ends the stream; without that this blocks
        stopper.join()
    collector.process = None
    # uvicorn re-raises the signal it handled once it has shut down (-SIGTERM); a collector
    # held open past the harness's ceiling is killed instead (-SIGKILL).
    assert stopped in ([0], [-signal.SIGTERM]), f"stopped with {stopped}: held by the stream"
    assert all(not line.startswith("data: ") or "cursor" in line for line in rest)
