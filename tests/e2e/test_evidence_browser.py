"""An admin in a real headless Chromium: orders a capture and downloads a verified pcap.

A real collector (HTTPS, SQLite); an agent's upload is made over its API, as
the agent's uploader makes it (tests/e2e/test_evidence.py runs the agent).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import IP, TCP
from scapy.utils import wrpcap

from agent.events import uuid7
from tests.e2e.harness import Collector, wait_until
from tests.e2e.test_console_browser import browser as browser
from tests.e2e.test_console_browser import shot, sign_in, subprocess_input

pytestmark = pytest.mark.e2e


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Collector]:
    instance = Collector(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'collector.db'}")
    instance.init()
    result = subprocess_input(instance, "user", "create", "wang", "--role", "admin",
                              "--password-stdin")
    assert result.returncode == 0, result.stderr
    instance.start()
    yield instance
    instance.stop()


def seed(collector: Collector, pcap: bytes) -> tuple[str, str]:
    """Two outside-flow events of one agent; the first has a verified pcap. Their ids."""
    with collector.http() as client:
        enrolled = client.post("/api/v1/enroll", json={
            "token": collector.create_token(), "hostname": "ws-court-09",
            "agent_version": "0.1.0"}).json()
        agent_id = enrolled["agent_id"]
        headers = {"Authorization": f"Bearer {agent_id}:{enrolled['secret']}"}
        now = datetime.now(UTC).isoformat()
        ids = [str(uuid7()), str(uuid7())]
        batch = [{"id": event_id, "seq": seq, "time": now, "agent_id": agent_id,
                  "host": "ws-court-09", "kind": "test.flow", "severity": "high",
                  "summary": "终端访问外部地址 203.0.113.10:80",
                  "evidence": {"remote_address": "203.0.113.10", "interface": "usb0"}}
                 for seq, event_id in enumerate(ids, start=1)]
        stored = client.post("/api/v1/events", headers=headers,
                             json={"agent_id": agent_id, "sent_at": now, "events": batch})
        assert stored.status_code == 200, stored.text
        client.post(f"/api/v1/evidence/{ids[0]}", headers=headers, json={
            "size": len(pcap), "sha256": hashlib.sha256(pcap).hexdigest(), "packets": 3})
        done = client.put(f"/api/v1/evidence/{ids[0]}", params={"offset": 0}, content=pcap,
                          headers={**headers, "Content-Type": "application/octet-stream"})
        assert done.json()["complete"] is True, done.text
    return ids[0], ids[1]


def test_admin_downloads_the_pcap_and_orders_a_capture(
    console: Collector, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    source = tmp_path / "source.pcap"
    wrpcap(str(source), [IP(dst="203.0.113.10") / TCP(dport=80, flags="S")] * 3)
    pcap = source.read_bytes()
    captured, plain = seed(console, pcap)
    base = console.url
    sign_in(browser, base, "wang")

    browser.get(f"{base}/console/events/{captured}")
    assert browser.find_element(By.ID, "artifact-state").text == "已收到，哈希已校验"
    assert browser.find_element(By.ID, "artifact-sha256").text == hashlib.sha256(pcap).hexdigest()
    shot(browser, "evidence-01-event")
    browser.find_element(By.ID, "artifact-download").click()

    def downloaded() -> Path | None:
        files = [f for f in browser.downloads.glob("*.pcap")]
        return files[0] if files else None

    pcap_file = wait_until(downloaded, 30, "the pcap to download")
    wait_until(lambda: pcap_file.stat().st_size == len(pcap), 30, "the download to finish")
    time.sleep(0.2)
    assert pcap_file.read_bytes() == pcap
    audit = console.query("SELECT actor, via FROM audit_log WHERE action = 'evidence.download' "
                          "AND object_id = :id", id=captured)
    assert [(row.actor, row.via) for row in audit] == [("wang", "console")]

    browser.get(f"{base}/console/events/{plain}")
    duration = browser.find_element(By.NAME, "duration_s")
    duration.clear()
    duration.send_keys("20")
    browser.find_element(By.NAME, "reason").send_keys("核查外联")
    browser.find_element(By.ID, "capture-submit").click()
    wait_until(lambda: "已下发抓包取证指令" in browser.page_source, 15, "the order to show")
    assert browser.find_element(By.ID, "artifact-state").text == "已下令，等待终端执行"
    shot(browser, "evidence-02-ordered")
