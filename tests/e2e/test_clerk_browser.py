"""文书检查 in a real headless Chromium against a real collector (HTTPS, SQLite, real workers).

A clerk (书记员, made with ``courtguard-collector user create --role clerk``)
signs in and lands on the page; a file dropped on the page is chosen; an
oversize choice is refused in the browser; a judgment is uploaded, its
findings shown in place and by rule and person; the phone number is marked
not applicable; the corrected .docx is downloaded and opened. Hostile files
get their Chinese errors while the server's memory stays bounded; a reviewer
then sees the decision. Screenshots go to ``artifacts/console/``.
"""

from __future__ import annotations

import io
import re
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.agent.detectors.documents.docfiles import DocxContent, write_docx
from tests.e2e import test_console_browser as console_browser
from tests.e2e.harness import BIN, Collector, wait_until
from tests.e2e.test_console_browser import PASSWORD, shot, text_of

#: The console browser test's Chromium (Debian's chromium and chromedriver; skips without).
browser = console_browser.browser

pytestmark = pytest.mark.e2e

#: The collector's upload limit in this test, small so "too large" is cheap to reach.
MAX_BYTES = 8 * 1024 * 1024
JUDGMENT = [
    "北京市朝阳区人民法院",
    "刑事判决书",
    "(2024)京0105刑初9号",
    "被告人孙某，男，1990年3月1日出生。",
    "经审理查明，被告人孙某殴打被害人王小明，王小明的手机号码13812345678。",
    "审判员  刘大伟",
    "书记员  周文",
]


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    """One collector for the module (its start and the CLI's user creation are the slow part)."""
    home = tmp_path_factory.mktemp("clerk")
    instance = Collector(home=home, database_url=f"sqlite:///{home / 'collector.db'}")
    instance.extra_env["COURTGUARD_COLLECTOR_MAX_DOCUMENT_BYTES"] = str(MAX_BYTES)
    instance.init()
    for name, role in (("shuji", "clerk"), ("zhang", "reviewer")):
        made = subprocess.run([str(BIN / "courtguard-collector"), "user", "create", name,
                               "--role", role, "--password-stdin"], env=instance.env(),
                              input=PASSWORD + "\n", capture_output=True, text=True, timeout=60)
        assert made.returncode == 0, made.stderr
    instance.start()
    yield instance
    instance.stop()


def sign_in(driver: Any, base: str, user: str, lands_on: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{base}/console/login")
    driver.find_element(By.ID, "username").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login").click()
    wait_until(lambda: lands_on in driver.current_url, 10, "sign-in to finish")


def peak_rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    assert match is not None
    return int(match.group(1))


def docx_text(data: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        xml = archive.read("word/document.xml").decode()
    return re.sub(r"<[^>]+>", "", xml.replace("</w:p>", "\n"))


def test_clerk_checks_documents_in_a_browser(collector: Collector, browser: Any,
                                             tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    base = collector.url
    sign_in(browser, base, "shuji", "/console/doccheck")
    nav = browser.find_element(By.TAG_NAME, "nav").text
    assert nav.split() == ["文书检查"]
    shot(browser, "clerk-01-page")

    # a file dropped on the zone is chosen; a choice over the limit is refused before sending
    browser.execute_script("""
        const drop = new DataTransfer();
        drop.items.add(new File(["判决书"], "dropped.txt", {type: "text/plain"}));
        document.getElementById("dropzone").dispatchEvent(
            new DragEvent("drop", {dataTransfer: drop, bubbles: true, cancelable: true}));
    """)
    assert "dropped.txt" in text_of(browser, "chosen")
    assert browser.execute_script("return document.getElementById('files').files.length") == 1
    browser.execute_script(f"""
        const big = new DataTransfer();
        big.items.add(new File([new Uint8Array({MAX_BYTES + 1})], "big.txt"));
        document.getElementById("dropzone").dispatchEvent(
            new DragEvent("drop", {{dataTransfer: big, bubbles: true, cancelable: true}}));
    """)
    browser.find_element(By.ID, "check").click()
    assert "上传的文件过大" in text_of(browser, "client-error")
    assert browser.current_url.removeprefix(base) == "/console/doccheck"

    # upload a judgment: verdict, findings in place, grouped, original → replacement
    document = write_docx(tmp_path / "王小明故意伤害案.docx", DocxContent(JUDGMENT))
    browser.get(f"{base}/console/doccheck")
    browser.find_element(By.ID, "files").send_keys(str(document))
    browser.find_element(By.ID, "check").click()
    wait_until(lambda: "/console/doccheck/result" in browser.current_url, 30, "the result page")
    banner = browser.find_element(By.CSS_SELECTOR, ".verdict-banner").text
    assert "处理后公开" in banner and "修正稿已替换" in banner
    marks = browser.find_elements(By.CSS_SELECTOR, ".doc-text mark")
    # the body's three, then the file name's
    assert [m.text for m in marks] == ["王小明", "王小明", "13812345678", "王小明"]
    assert "act-redact" in marks[2].get_attribute("class")
    groups = browser.find_elements(By.CSS_SELECTOR, ".group")
    assert len(groups) == 2
    assert groups[0].text.count("法释〔2016〕19号第八条") == 1  # the reason once per group
    assert "王小明\n→\n王某" in groups[0].text or "王小明 → 王某" in groups[0].text
    shot(browser, "clerk-02-result")

    # the phone number is the court's own: not applicable, with a reason
    row = browser.find_element(By.CSS_SELECTOR, "tr[data-keys*='documents.mobile-phone']")
    row.find_element(By.NAME, "reason").send_keys("此为法院公开的诉讼服务电话")
    row.find_element(By.CSS_SELECTOR, "form.not-applicable button").click()
    wait_until(lambda: "恢复适用" in browser.page_source, 30, "the decision to show")
    assert "此为法院公开的诉讼服务电话" in browser.page_source
    shot(browser, "clerk-03-not-applicable")

    # download the corrected .docx and open it
    browser.find_element(By.ID, "download-1").click()

    def downloaded() -> Path | None:
        done = [f for f in browser.downloads.glob("*.docx")]
        return done[0] if done else None

    copy = wait_until(downloaded, 20, "the corrected copy to download")
    wait_until(lambda: zipfile.is_zipfile(copy), 10, "the download to finish")
    assert copy.name == "王某故意伤害案-修正稿.docx"
    text = docx_text(copy.read_bytes())
    assert "王小明" not in text
    assert "被害人王某，王某的手机号码13812345678" in text  # phone kept: not applicable
    assert "审判员  刘大伟" in text

    # hostile files through the page: a clear error each, and the server's memory bounded
    assert collector.process is not None
    server_pid = collector.process.pid
    before = peak_rss_kib(server_pid)
    bomb = tmp_path / "bomb.docx"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"A" * (300 * 1024 * 1024))
    deep = tmp_path / "deep.ofd"
    with zipfile.ZipFile(deep, "w") as archive:
        archive.writestr("OFD.xml", "<a>" * 5000 + "</a>" * 5000)
    locked = tmp_path / "locked.docx"
    locked.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 4096)
    browser.get(f"{base}/console/doccheck")
    browser.find_element(By.ID, "files").send_keys("\n".join(map(str, (bomb, deep, locked))))
    browser.find_element(By.ID, "check").click()
    wait_until(lambda: "/console/doccheck/result" in browser.current_url, 60, "the result page")
    errors = "\n".join(e.text for e in browser.find_elements(By.CSS_SELECTOR, ".v-error"))
    assert "压缩炸弹" in errors and "嵌套过深" in errors and "已加密" in errors
    shot(browser, "clerk-04-hostile")
    # a huge upload sent past the page's script is refused unread, in Chinese
    cookie = browser.get_cookie("cg_session")["value"]
    with httpx.Client(base_url=base, verify=collector.ssl_context(),
                      cookies={"cg_session": cookie}, timeout=60) as client:
        csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/console/doccheck").text)
        assert csrf is not None
        huge = client.post("/console/doccheck", data={"csrf": csrf.group(1)},
                           files={"files": ("huge.txt", b"x" * (MAX_BYTES + 2 * 1024 * 1024))})
        assert huge.status_code == 413 and "上传的文件过大" in huge.text
    grown_mib = (peak_rss_kib(server_pid) - before) / 1024
    assert grown_mib < 64, f"the server's peak memory grew by {grown_mib:.0f} MiB"

    # the clerk opens no event, alert or policy; the reviewer sees the decision
    for path in ("/console/events", "/console/alerts", "/console/policies"):
        browser.get(f"{base}{path}")
        assert "无权" in browser.page_source, path
    browser.get(f"{base}/console/doccheck")
    browser.find_element(By.ID, "logout").click()
    # the sign-out lands on a fresh sign-in form whose cookie a second form would race
    wait_until(lambda: "/console/login" in browser.current_url
               and browser.find_elements(By.ID, "login"), 10, "sign-out to finish")
    sign_in(browser, base, "zhang", "/console/overview")
    browser.get(f"{base}/console/docdecisions")
    table = browser.find_element(By.ID, "decisions").text
    assert "shuji" in table and "此为法院公开的诉讼服务电话" in table
    assert "13812345678" not in table  # masked excerpts only
    shot(browser, "clerk-05-review")


def test_clerk_api_key_over_https(collector: Collector) -> None:
    made = collector.cli("apikey", "create", "--name", "publisher", "--role", "clerk", "--quiet")
    key = made.stdout.strip().splitlines()[-1]
    body = "\n".join(JUDGMENT).encode()
    with collector.http() as client:
        headers = {"Authorization": f"Bearer {key}"}
        checked = client.post("/api/v1/documents/check", params={"name": "a.txt"},
                              content=body, headers=headers)
        assert checked.status_code == 200 and checked.json()["verdict"] == "needs_redaction"
        assert client.get("/api/v1/events", headers=headers).status_code == 403
