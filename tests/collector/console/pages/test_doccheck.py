"""文书检查 in process: the clerk role's reach, upload, findings in place, decisions, download.

The real document workers check the files (``create_app``'s pool); the store is
SQLite here, and the store module's own tests run on SQLite and PostgreSQL
(tests/collector/store/test_doccheck.py). tests/e2e/test_clerk_browser.py
drives the same page in Chromium.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collector.app import create_app
from collector.console import users, web
from collector.settings import CollectorSettings
from collector.store import apikeys, audit, migrate
from collector.store import doccheck as store
from collector.store.database import Database
from tests.agent.detectors.documents.docfiles import DocxContent, write_docx, write_pdf
from tests.collector.conftest import POLICIES, TestClient
from tests.collector.console.conftest import NOW, PASSWORD, csrf_of, login
from tests.collector.console.test_web import console_routes

JUDGMENT = [
    "北京市朝阳区人民法院",
    "刑事判决书",
    "(2024)京0105刑初9号",
    "被告人孙某，男，1990年3月1日出生。",
    "经审理查明，被告人孙某殴打被害人王小明，王小明的手机号码13812345678。",
    "审判员  刘大伟",
    "书记员  周文",
]
CLERK_ROUTES = {"/console/doccheck", "/console/doccheck/result", "/console/doccheck/decide",
                "/console/doccheck/download/x", "/console/logout"}


@pytest.fixture(scope="module")
def module_app(tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[tuple[CollectorSettings, Database, TestClient]]:
    """One collector for the module: its document workers start once."""
    home = tmp_path_factory.mktemp("doccheck")
    settings = CollectorSettings(data_dir=home / "data", tls=False, policy_dir=POLICIES,
                                 silent_check_interval_s=3600, console_login_rate_per_min=1000,
                                 document_workers=1,
                                 database_url=f"sqlite:///{home / 'console.db'}")
    database = Database.from_settings(settings)
    migrate.upgrade(database)
    for name, role in (("zhang", "reviewer"), ("shuji", "clerk"), ("shuji2", "clerk")):
        users.create_user(database, name, role, PASSWORD, NOW)
    with TestClient(create_app(settings, database)) as test_client:
        yield settings, database, test_client
    database.dispose()


@pytest.fixture
def console_settings(module_app: tuple[CollectorSettings, Database, TestClient]
                     ) -> CollectorSettings:
    return module_app[0]


@pytest.fixture
def console_db(module_app: tuple[CollectorSettings, Database, TestClient]) -> Database:
    return module_app[1]


@pytest.fixture
def clerk_client(module_app: tuple[CollectorSettings, Database, TestClient]) -> TestClient:
    client = module_app[2]
    client.cookies.clear()
    return client


def upload(client: TestClient, files: list[tuple[str, bytes]], **fields: str) -> Any:
    csrf = csrf_of(client, "/console/doccheck")
    return client.post("/console/doccheck", data={"csrf": csrf, **fields},
                       files=[("files", (name, data)) for name, data in files])


def test_clerk_reaches_only_the_check_page(clerk_client: TestClient) -> None:
    response = login(clerk_client, "shuji")
    assert response.status_code == 303 and response.headers["location"] == "/console/doccheck"
    page = clerk_client.get("/console/doccheck")
    assert page.status_code == 200 and "文书检查" in page.text
    nav = re.search(r"<nav>(.*?)</nav>", page.text, re.S)
    assert nav is not None and re.findall(r'href="(/console/[^"]+)"', nav.group(1)) == [
        "/console/doccheck"]
    landing = clerk_client.get("/console/", follow_redirects=False)
    assert landing.headers["location"] == "/console/doccheck"
    csrf = csrf_of(clerk_client, "/console/doccheck")
    for method, path in console_routes(clerk_client):
        if path.replace("{token}", "x") in CLERK_ROUTES:
            continue
        response = clerk_client.request(method, path.replace("{token}", "x"),
                                        data={"csrf": csrf}, follow_redirects=False)
        assert response.status_code == 403, (method, path)
    for path in ("/console/events", "/console/alerts", "/console/policies",
                 "/console/docdecisions"):
        assert clerk_client.get(path).status_code == 403


def test_clerk_api_key(clerk_client: TestClient, console_db: Database) -> None:
    key = apikeys.create_api_key(console_db, name="publisher", role="clerk", now=NOW)[1]
    bearer = {"Authorization": f"Bearer {key}"}
    checked = clerk_client.post("/api/v1/documents/check", params={"name": "a.txt"},
                                content="\n".join(JUDGMENT).encode(), headers=bearer)
    assert checked.status_code == 200, checked.text
    assert checked.json()["verdict"] == "needs_redaction"
    for path in ("/api/v1/events", "/api/v1/alerts", "/api/v1/audit", "/api/v1/agents"):
        assert clerk_client.get(path, headers=bearer).status_code == 403, path
    auditor = apikeys.create_api_key(console_db, name="aud", role="auditor", now=NOW)[1]
    refused = clerk_client.post("/api/v1/documents/check", params={"name": "a.txt"},
                                content=b"x", headers={"Authorization": f"Bearer {auditor}"})
    assert refused.status_code == 403 and "clerk" in refused.json()["detail"]


def test_check_decide_download(clerk_client: TestClient, console_db: Database,
                               tmp_path: Path) -> None:
    login(clerk_client, "shuji")
    docx = write_docx(tmp_path / "a.docx", DocxContent(JUDGMENT)).read_bytes()
    result = upload(clerk_client, [("王小明案.docx", docx)], profile="spc-2016")
    assert result.status_code == 200 and "/console/doccheck/result?t=" in str(result.url)
    page = result.text
    assert "处理后公开" in page
    assert page.count("法释〔2016〕19号第八条") == 1  # the reason once per group
    assert re.search(r'<mark id="f-[^"]+-0" class="act-pseudonymize"[^>]*>王小明</mark>', page)
    assert '<td class="original">王小明</td><td>→</td>' in page
    assert '<td class="replacement">王某</td>' in page
    token = re.search(r"/console/doccheck/download/([\w-]+)", page)
    assert token is not None
    corrected = clerk_client.get(f"/console/doccheck/download/{token.group(1)}")
    assert corrected.status_code == 200
    assert "王某案-修正稿.docx" in corrected.headers["content-disposition"].replace(
        "%E7%8E%8B%E6%9F%90%E6%A1%88", "王某案").replace("-%E4%BF%AE%E6%AD%A3%E7%A8%BF",
                                                           "-修正稿")
    text = _docx_text(corrected.content)
    assert "王小明" not in text and "13812345678" not in text and "王某" in text
    assert "审判员  刘大伟" in text  # the keep-list stays
    # history: hash, pseudonymised name, verdict; no raw name anywhere in the store
    row = store.history(console_db, "shuji")[0]
    assert row["file_name"] == "王某案.docx" and row["verdict"] == "needs_redaction"
    # mark the phone number not applicable: kept in the copy, recorded, audited
    keys = re.search(r'name="key" value="(documents\.mobile-phone:[^"]+)"', page)
    assert keys is not None
    decided = clerk_client.post("/console/doccheck/decide", data={
        "csrf": csrf_of(clerk_client, "/console/doccheck"), "token": token.group(1),
        "key": keys.group(1), "decision": "not_applicable", "reason": "法院公开电话",
        "back": f"t={token.group(1)}"})
    assert decided.status_code == 200 and "法院公开电话" in decided.text
    assert "恢复适用" in decided.text
    text = _docx_text(clerk_client.get(f"/console/doccheck/download/{token.group(1)}").content)
    assert "13812345678" in text and "王小明" not in text
    entries = audit.query_audit(console_db, audit.AuditFilter(action="document.not_applicable"),
                                10)
    assert entries and entries[0]["actor"] == "shuji" and entries[0]["reason"] == "法院公开电话"
    # the decision is kept with the hash: a fresh upload of the same file starts with it
    again = upload(clerk_client, [("王小明案.docx", docx)], profile="spc-2016")
    assert "1 处已由书记员标记为不适用" in again.text
    # the security team reviews it; no raw personal data in what the store holds
    login(clerk_client, "zhang")
    review = clerk_client.get("/console/docdecisions")
    assert review.status_code == 200 and "法院公开电话" in review.text and "shuji" in review.text
    decision = store.list_decisions(console_db)[0]
    assert "13812345678" not in str(decision) and decision["excerpt"].startswith("1")
    assert "王小明" not in str(store.history(console_db, "shuji"))
    reviewer = apikeys.create_api_key(console_db, name="sec", role="reviewer", now=NOW)[1]
    listed = clerk_client.get("/api/v1/documents/decisions", params={"clerk": "shuji"},
                              headers={"Authorization": f"Bearer {reviewer}"})
    assert listed.status_code == 200
    assert listed.json()["decisions"][0]["reason"] == "法院公开电话"
    clerk_key = apikeys.create_api_key(console_db, name="c", role="clerk", now=NOW)[1]
    assert clerk_client.get("/api/v1/documents/decisions",
                            headers={"Authorization": f"Bearer {clerk_key}"}).status_code == 403
    assert store.history(console_db, "zhang") == []  # each sees their own history


def test_pdf_gets_a_docx_copy_and_hostile_files_an_error(clerk_client: TestClient,
                                                         tmp_path: Path) -> None:
    login(clerk_client, "shuji")
    pdf = write_pdf(tmp_path / "a.pdf", JUDGMENT).read_bytes()
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"A" * (300 * 1024 * 1024))
    page = upload(clerk_client, [("a.pdf", pdf), ("bomb.docx", bomb.getvalue()),
                                 ("deep.ofd", deep_ofd()), ("locked.docx", ENCRYPTED),
                                 ("empty.txt", b""), ("x.exe", b"MZ")])
    assert page.status_code == 200
    assert "原 PDF 文件本身未作任何修改" in page.text
    assert "压缩炸弹" in page.text
    assert "嵌套过深" in page.text
    assert "已加密" in page.text
    assert "文件是空的" in page.text and "只能检查" in page.text
    token = re.search(r"/console/doccheck/download/([\w-]+)\?as=txt", page.text)
    assert token is not None
    copy = clerk_client.get(f"/console/doccheck/download/{token.group(1)}")
    assert copy.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument")
    assert "王某" in _docx_text(copy.content) and "王小明" not in _docx_text(copy.content)
    txt = clerk_client.get(f"/console/doccheck/download/{token.group(1)}?as=txt")
    assert "王某" in txt.text and "王小明" not in txt.text


def test_oversize_upload_is_refused_in_chinese(clerk_client: TestClient,
                                               console_settings: CollectorSettings) -> None:
    login(clerk_client, "shuji")
    size = console_settings.max_document_bytes + 2 * 1024 * 1024
    response = upload(clerk_client, [("big.txt", b"a" * size)])
    assert response.status_code == 413
    assert "上传的文件过大" in response.text


def test_other_users_cannot_open_a_result(clerk_client: TestClient) -> None:
    login(clerk_client, "shuji")
    page = upload(clerk_client, [("a.txt", "\n".join(JUDGMENT).encode())])
    token = re.search(r"/console/doccheck/download/([\w-]+)", page.text)
    assert token is not None
    login(clerk_client, "shuji2")
    assert clerk_client.get(f"/console/doccheck/download/{token.group(1)}").status_code == 404
    other = clerk_client.get(f"/console/doccheck/result?t={token.group(1)}")
    assert "已不再保留" in other.text and "13812345678" not in other.text


#: What Word writes for a password-protected .docx starts as an OLE compound file.
ENCRYPTED = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 4096


def deep_ofd() -> bytes:
    """An OFD whose OFD.xml nests 5,000 elements deep."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("OFD.xml", "<a>" * 5000 + "</a>" * 5000)
    return buffer.getvalue()


def _docx_text(data: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        xml = archive.read("word/document.xml").decode()
    return re.sub(r"<[^>]+>", "", xml.replace("</w:p>", "\n"))


def test_routes_are_in_the_route_table() -> None:
    paths = {getattr(r, "path", "") for r in web.router.routes}
    assert {"/console/doccheck", "/console/docdecisions"} <= paths


def test_markup_in_names_and_text_is_shown_as_text(clerk_client: TestClient) -> None:
    login(clerk_client, "shuji")
    hostile = '<img src=x onerror="alert(1)">'
    body = "\n".join([*JUDGMENT, f"备注：{hostile}<script>alert(2)</script>"]).encode()
    page = upload(clerk_client, [(f"{hostile}.txt", body)])
    assert page.status_code == 200
    assert "<img src=x" not in page.text and "<script>alert(2)" not in page.text
    assert "&lt;img src=x onerror=" in page.text and "&lt;script&gt;alert(2)" in page.text
