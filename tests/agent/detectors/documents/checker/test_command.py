# ruff: noqa: E501  (judgment text reads best on one line)
"""``courtguard-agent scan`` as a publishing workflow calls it: real processes, exit codes, JSON.

The report is read by a clerk in Chinese (``zh_CN.UTF-8``, the default here); one test reads
it under ``C.UTF-8``, where its own words are English.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import zipfile
from pathlib import Path

from tests.agent.detectors.documents.conftest import run_scan
from tests.agent.detectors.documents.docfiles import DocxContent, write_docx

CLEAN = "北京市朝阳区人民法院\n民事判决书\n(2024)京0105民初1号\n原告赵某，男。\n被告钱某，女。\n原告赵某与被告钱某买卖合同纠纷一案。\n审判员  孙立\n"
DIRTY = CLEAN + "被告钱某的手机号码13812345678。\n"


def scan(*args: str, lang: str = "zh_CN.UTF-8") -> subprocess.CompletedProcess[str]:
    return run_scan(*args, lang=lang)


def test_exit_codes_and_json(tmp_path: Path) -> None:
    clean = tmp_path / "clean.txt"
    clean.write_text(CLEAN, encoding="gb18030")
    dirty = tmp_path / "dirty.txt"
    dirty.write_text(DIRTY)
    assert scan(str(clean)).returncode == 0
    done = scan("--json", str(dirty))
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["verdict"] == "needs_redaction" and report["sha256"]
    (finding,) = report["findings"]
    assert finding["rule_id"] == "documents.mobile-phone"
    assert DIRTY[finding["start"] : finding["end"]] == "13812345678"
    assert "13812345678" not in done.stdout
    missing = scan(str(tmp_path / "nope.txt"))
    assert missing.returncode == 2 and "文件或目录不存在" in missing.stdout


def test_directory_with_hostile_files_summarises_and_keeps_going(tmp_path: Path) -> None:
    tree = tmp_path / "published" / "2024"
    tree.mkdir(parents=True)
    (tree / "a.txt").write_text(CLEAN)
    (tree / "b.txt").write_text(DIRTY)
    write_docx(tree / "c.docx", DocxContent(CLEAN.splitlines(), comment="钱某电话13812345678"))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"A" * (300 * 1024 * 1024))
    (tree / "bomb.docx").write_bytes(buffer.getvalue())
    (tree / "ignored.xlsx").write_bytes(b"x")
    done = scan(str(tmp_path / "published"), "--jobs", "2")
    assert done.returncode == 2, done.stderr
    assert "共审查 4 份文书：可以公开 1 份，需处理后公开 2 份，无法审查 1 份" in done.stdout
    assert "documents.mobile-phone: 2 处" in done.stdout
    assert "压缩炸弹" in done.stdout


def test_profile_switch(tmp_path: Path) -> None:
    named = tmp_path / "named.txt"
    named.write_text(CLEAN.replace("原告赵某，男。", "原告赵建国，男，1980年1月1日出生。"))
    assert scan("--profile", "spc-2016", str(named)).returncode == 0
    strict = scan("--profile", "spc-2024", str(named))
    assert strict.returncode == 1 and "documents.party-name" in strict.stdout


NAMED_2024 = CLEAN.replace("原告赵某，男。", "原告张三，男，1980年1月1日出生。").replace(
    "原告赵某与", "原告张三与"
) + "被告钱某的手机号码13812345678。\n"


def test_human_output_locates_each_finding_and_shows_the_text_as_it_stands(tmp_path: Path) -> None:
    named = tmp_path / "named.txt"
    named.write_text(NAMED_2024)
    done = scan("--profile", "spc-2024", str(named))
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    # One group per rule, its reason and basis said once, then each place it is found.
    assert sum("documents.party-name）" in line for line in lines) == 1
    assert sum(line.strip().startswith("依据：") for line in lines) == 2
    assert "正文第4行第3列  “张三” → “张某”" in done.stdout
    assert "正文第6行第3列  “张三” → “张某”" in done.stdout
    assert "正文第8行第10列  “13812345678” → “×××”" in done.stdout
    assert lines[-1].strip() == "小结：需处理后公开；共 3 处（删除 1 处，隐名 2 处），涉及 2 条规则。"
    # The machine contract: masked excerpts and positions, never the original text.
    machine = scan("--json", "--profile", "spc-2024", str(named))
    report = json.loads(machine.stdout)
    assert "张三" not in machine.stdout and "13812345678" not in machine.stdout
    positions = [(f["line"], f["column"], f["paragraph"]) for f in report["findings"]]
    assert positions == [(4, 3, None), (6, 3, None), (8, 10, None)]
    assert all("original" not in f for f in report["findings"])


def test_docx_findings_carry_their_paragraph(tmp_path: Path) -> None:
    paragraphs = ["民事判决书", "", "原告张三，男，1980年1月1日出生。", "被告钱某，女。", "原告张三与被告钱某买卖合同纠纷一案。"]
    path = write_docx(tmp_path / "p.docx", DocxContent(paragraphs))
    done = scan("--json", "--profile", "spc-2024", str(path))
    report = json.loads(done.stdout)
    body = [f for f in report["findings"] if f["part"] == "body" and f["rule_id"] == "documents.party-name"]
    assert [f["paragraph"] for f in body] == [3, 5]
    human = scan("--profile", "spc-2024", str(path))
    assert "（第3段）  “张三” → “张某”" in human.stdout and "（第5段）" in human.stdout


def test_fix_lists_what_changed_from_the_original(tmp_path: Path) -> None:
    named = tmp_path / "named.txt"
    named.write_text(NAMED_2024)
    done = scan("--profile", "spc-2024", "--fix", str(named), "-o", str(tmp_path / "out.txt"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "正文第4行第3列  “张三” → “张某”" in done.stdout
    assert "“张某” → “张某”" not in done.stdout
    assert "“13812345678” → “×××”" in done.stdout


def test_english_locale_reports_in_english_around_the_policy_and_document_text(
    tmp_path: Path,
) -> None:
    """Under C.UTF-8 the report's own words are English; what is Chinese comes from the policy
    (a rule's reason and legal basis) or from the document itself."""
    named = tmp_path / "named.txt"
    named.write_text(NAMED_2024)
    done = scan("--profile", "spc-2024", str(named), str(tmp_path / "nope.txt"), lang="C.UTF-8")
    assert done.returncode == 2, done.stderr
    out = done.stdout
    assert "  verdict: publishable after redaction (rule set spc-2024)" in out
    assert "body line 4 column 3  “张三” → “张某”" in out
    assert "summary: publishable after redaction; 3 found (delete 1, pseudonymise 2) under 2 rule(s)." in out
    assert "  cannot be checked: no such file or directory" in out
    assert "documents checked: 2 (publishable after redaction 1, cannot be checked 1)" in out
    machine = json.loads(scan("--json", "--profile", "spc-2024", str(named)).stdout)
    from_policy = {f[key] for f in machine["findings"] for key in ("detail", "basis")}
    left = re.sub(r"“[^”]*”", "", out)
    for text in sorted(from_policy, key=len, reverse=True):
        left = left.replace(text, "")
    assert not re.search(r"[\u4e00-\u9fff]", left), left
