"""The page's view of one file, built in process: groups, marks, corrected copy, bounds."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.detectors.documents.policy import DocumentsPolicy
from agent.policy.loader import load_policy_dir
from collector.doccheck import work

POLICIES = Path(__file__).resolve().parents[3] / "policies"
TEXT = ("北京市朝阳区人民法院\n民事判决书\n(2024)京0105民初1号\n原告赵某，男。\n被告钱某，女。\n"
        "原告赵某与被告钱某买卖合同纠纷一案。被告钱某的手机号码13812345678。\n审判员  孙立\n")


@pytest.fixture(scope="module")
def policy() -> DocumentsPolicy:
    section = load_policy_dir(POLICIES).section("documents")
    assert isinstance(section, DocumentsPolicy)
    return section


def test_txt_keeps_its_encoding_and_excluded_findings_stay(policy: DocumentsPolicy) -> None:
    data = TEXT.encode("gb18030")
    outcome = work.check(data, "判决.txt", policy, None)
    assert outcome["verdict"] == "needs_redaction"
    (phone,) = [f for f in outcome["findings"] if f["rule_id"] == "documents.mobile-phone"]
    assert phone["original"] == "13812345678" and phone["applied"]
    assert "13812345678" not in outcome["corrected"].decode("gb18030")
    line = next(line for line in outcome["parts"][0]["lines"]
                if any(i == phone["index"] for _, i in line))
    assert ("13812345678", phone["index"]) in [tuple(piece) for piece in line]
    kept = work.check(data, "判决.txt", policy, None, frozenset({phone["key"]}))
    assert kept["verdict"] == "publishable" and kept["excluded_count"] == 1
    assert "13812345678" in kept["corrected"].decode("gb18030")
    assert work.history_row(kept)["findings"] == 0


def test_many_findings_are_listed_up_to_the_bound(policy: DocumentsPolicy) -> None:
    text = "北京市朝阳区人民法院\n民事判决书\n" + "".join(
        f"原告王小明的手机号码1381234{n:04d}。\n" for n in range(work.MAX_SHOWN_FINDINGS + 10))
    outcome = work.check(text.encode(), "a.txt", policy, None)
    assert len(outcome["findings"]) == work.MAX_SHOWN_FINDINGS
    assert outcome["unlisted"] >= 10 and "页面只列出前" in "".join(outcome["why"])
    assert "1381234" not in outcome["corrected"].decode()  # every one is corrected


def test_unreadable_file_keeps_no_name(policy: DocumentsPolicy) -> None:
    outcome = work.check(b"\x00not a docx", "王小明案.docx", policy, None)
    assert outcome["error"] and outcome["verdict"] is None
    assert "王小明" not in work.history_row(outcome)["file_name"]
