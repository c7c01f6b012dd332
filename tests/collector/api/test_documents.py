"""POST /api/v1/documents/check: the same JSON as scan --json, authenticated, bounded."""

from __future__ import annotations

import gzip
import io
import zipfile
from typing import Any

from tests.agent.detectors.documents.docfiles import DocxContent, write_docx

TEXT = (
    "北京市朝阳区人民法院\n民事判决书\n(2024)京0105民初1号\n原告赵某，男。\n被告钱某，女。\n"
    "原告赵某与被告钱某买卖合同纠纷一案。被告钱某的手机号码13812345678。\n审判员  孙立\n"
)


def test_check_txt_and_docx(client: Any, admin: dict[str, str], tmp_path: Any) -> None:
    response = client.post(
        "/api/v1/documents/check",
        params={"name": "判决.txt"},
        content=TEXT.encode("gb18030"),
        headers=admin,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["verdict"] == "needs_redaction" and body["path"] == "判决.txt"
    assert [f["rule_id"] for f in body["findings"]] == ["documents.mobile-phone"]
    assert "13812345678" not in response.text
    clean = TEXT.replace("被告钱某的手机号码13812345678。", "")
    docx = write_docx(tmp_path / "a.docx", DocxContent(clean.splitlines()))
    response = client.post(
        "/api/v1/documents/check",
        params={"name": "a.docx", "profile": "spc-2016"},
        content=gzip.compress(docx.read_bytes()),
        headers={**admin, "Content-Encoding": "gzip"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["verdict"] == "publishable"


def test_hostile_and_refused(client: Any, admin: dict[str, str]) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"A" * (300 * 1024 * 1024))
    response = client.post(
        "/api/v1/documents/check",
        params={"name": "bomb.docx"},
        content=buffer.getvalue(),
        headers=admin,
    )
    assert response.status_code == 200
    assert response.json()["verdict"] is None and "压缩炸弹" in response.json()["error"]
    assert (
        client.post("/api/v1/documents/check", params={"name": "a.txt"}, content=b"x").status_code
        == 401
    )
    assert (
        client.post(
            "/api/v1/documents/check", params={"name": "a.txt"}, content=b"", headers=admin
        ).status_code
        == 422
    )
    assert client.post("/api/v1/documents/check", content=b"abc", headers=admin).status_code == 422
    huge = client.post(
        "/api/v1/documents/check",
        params={"name": "a.txt"},
        headers=admin,
        content=b"x" * (64 * 1024 * 1024 + 1),
    )
    assert huge.status_code == 413
