"""Documents end to end: a real agent watching a real folder, a real collector storing its events.

A judgment with names and a phone number dropped into the publication folder
becomes document.* events in the central store that carry masked excerpts and
hashes only; a clean judgment makes none; a zip bomb is one document.unreadable
event and the agent keeps running. The collector's check endpoint answers over
HTTPS with the scan command's JSON.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.agent.detectors.documents.docfiles import DocxContent, write_docx
from tests.e2e.harness import Agent, Collector, policies_watching, wait_until

pytestmark = pytest.mark.e2e

DIRTY = [
    "北京市朝阳区人民法院",
    "刑事判决书",
    "(2024)京0105刑初9号",
    "被告人孙某，男，1990年3月1日出生。",
    "经审理查明，被告人孙某殴打被害人王小明，王小明的手机号码13812345678。",
    "审判员  刘大伟",
    "书记员  周文",
]
CLEAN = [
    line.replace("王小明的手机号码13812345678", "王某的手机号码×××").replace("王小明", "王某")
    for line in DIRTY
]


def _bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"A" * (300 * 1024 * 1024))
    return buffer.getvalue()


def test_watched_folder_to_central_store(
    tmp_path: Path, make_agent: Callable[..., Agent], collector: Collector
) -> None:
    folder = tmp_path / "publish"
    folder.mkdir()
    policies = policies_watching(tmp_path / "policies", [folder])
    agent = make_agent(policy_dir=str(policies))
    agent.start()
    write_docx(
        folder / "王小明故意伤害案.docx", DocxContent(DIRTY, comment="王小明电话13812345678")
    )
    (folder / "clean.txt").write_text("\n".join(CLEAN), encoding="gb18030")
    (folder / "bomb.docx").write_bytes(_bomb())

    def document_events() -> list[dict[str, object]]:
        events = [
            e
            for e in collector.events(agent_id=agent.agent_id, limit=1000)
            if str(e["kind"]).startswith("document.")
        ]
        kinds = {e["kind"] for e in events}
        return (
            events
            if {"document.pseudonymize", "document.redact", "document.unreadable"} <= kinds
            else []
        )

    events = wait_until(document_events, 60, "document events in the central store")
    by_rule = {e["rule_id"]: e for e in events if e["rule_id"]}
    names = by_rule["documents.protected-person-name"]
    assert names["evidence"]["file_name"] == "王某故意伤害案.docx"
    assert {o["part"] for o in names["evidence"]["occurrences"]} >= {"body", "comments", "filename"}
    assert by_rule["documents.mobile-phone"]["evidence"]["occurrences_total"] == 2
    unreadable = next(e for e in events if e["kind"] == "document.unreadable")
    assert "压缩炸弹" in unreadable["evidence"]["error"]
    stored = json.dumps(
        collector.query("SELECT summary, evidence FROM events")[-50:],
        default=str,
        ensure_ascii=False,
    )
    for secret in ("王小明", "13812345678", "小明"):
        assert secret not in stored
    # The clean document made no event; the agent is alive and still heartbeating.
    assert all(e["evidence"]["file_name"] != "clean.txt" for e in events)
    assert agent.process is not None and agent.process.poll() is None
    collector.wait_online(agent.agent_id)


def test_check_endpoint_over_https(collector: Collector, tmp_path: Path) -> None:
    document = write_docx(tmp_path / "a.docx", DocxContent(DIRTY))
    with collector.http() as client:
        response = client.post(
            "/api/v1/documents/check",
            params={"name": "a.docx", "profile": "spc-2016"},
            content=document.read_bytes(),
            headers={"Authorization": f"Bearer {collector.admin_key}"},
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["verdict"] == "needs_redaction"
    assert {f["rule_id"] for f in body["findings"]} == {
        "documents.protected-person-name",
        "documents.mobile-phone",
    }
    assert "13812345678" not in response.text
