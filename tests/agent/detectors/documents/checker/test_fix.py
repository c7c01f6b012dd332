# ruff: noqa: E501  (judgment text reads best on one line)
"""``scan --fix``: consistent article 9 pseudonyms, deletions, every change reported, original untouched."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from agent.detectors.documents.checker.extract import extract_file
from agent.detectors.documents.checker.fix import fix_bytes
from agent.detectors.documents.policy import DocumentsPolicy
from tests.agent.detectors.documents.conftest import run_scan
from tests.agent.detectors.documents.docfiles import DocxContent, write_docx

TEXT = (
    "刑事判决书\n(2024)京0105刑初9号\n"
    "被告人张三，男，1990年3月1日出生，住北京市朝阳区建国路1号院2楼303室。\n"
    "经审理查明，被告人张三殴打被害人张四，证人张五、欧阳明月在场。张四的手机号码13812345678。\n"
    "审判员  孙立\n书记员  周文\n"
)


def test_txt_fix_numbers_colliding_pseudonyms_consistently(
    documents_policy: DocumentsPolicy,
) -> None:
    fixed, before, changes = fix_bytes(
        TEXT.encode("gb18030"), "a.txt", documents_policy, "spc-2024"
    )
    out = fixed.decode("gb18030")
    assert before.verdict == "needs_redaction"
    for name in ("张三", "张四", "张五", "欧阳明月", "13812345678", "建国路"):
        assert name not in out
    assert out.count("张某1") == 2 and out.count("张某2") == 2 and out.count("张某3") == 1
    assert "欧阳某" in out and "孙立" in out and "周文" in out and "(2024)京0105刑初9号" in out
    assert all(c.applied for c in changes)


def test_docx_fix_every_part_and_report(tmp_path: Path, documents_policy: DocumentsPolicy) -> None:
    source = write_docx(
        tmp_path / "case.docx",
        DocxContent(
            TEXT.splitlines(),
            table=[["被害人", "张四"]],
            header="张三故意伤害案",
            comment="张四电话13812345678",
            deleted="张三住址",
            title="张三案",
            author="周文",
        ),
    )
    original = hashlib.sha256(source.read_bytes()).hexdigest()
    output = tmp_path / "out" / "case.docx"
    done = run_scan("--fix", str(source), "-o", str(output), "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert (
        report["verdict_before"] == "needs_redaction" and report["verdict_after"] == "publishable"
    )
    assert {c["part"] for c in report["changes"]} >= {
        "body",
        "header:1",
        "comments",
        "deleted",
        "properties",
    }
    assert hashlib.sha256(source.read_bytes()).hexdigest() == original
    parts = {p.name: p.text for p in extract_file(output).parts}
    joined = "\n".join(v for k, v in parts.items() if k != "filename")
    for secret in ("张三", "张四", "13812345678"):
        assert secret not in joined
    assert "张某1故意伤害案" in parts["header:1"]
    assert "周文" in parts["properties"]


def test_fix_refuses_to_overwrite_the_original(tmp_path: Path) -> None:
    source = tmp_path / "a.txt"
    source.write_text(TEXT)
    done = run_scan("--fix", str(source), "-o", str(source))
    assert done.returncode == 2 and "never modified" in done.stderr
    assert source.read_text() == TEXT
