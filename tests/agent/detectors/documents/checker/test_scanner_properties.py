"""Property tests: any text, however odd, scans without error and with offsets in bounds."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.detectors.documents.checker.context import Part
from agent.detectors.documents.checker.normalize import normalize
from agent.detectors.documents.checker.scanner import scan_parts
from agent.detectors.documents.policy import DocumentsPolicy

PIECES = [
    "原告",
    "被告人",
    "被害人",
    "证人",
    "住",
    "户籍地",
    "身份证号",
    "手机",
    "账号",
    "，",
    "。",
    "\n",
    "张",
    "王",
    "欧阳",
    "某",
    "×",
    "１３８",
    "1381234",
    "5678",
    "11010519491231002X",
    "京A",
    "12345",
    "号",
    "路",
    "区",
    "县",
    "镇",
    "（",
    "）",
    "(2024)",
    "京0105民初1号",
    "男",
    "女",
    "1990年1月1日出生",
    "离婚纠纷",
    "调解书",
    "审判员",
    "　",
    "Ａ",
    "①",
    "ﬁ",
    "刑事",
    "一案",
]


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.sampled_from(PIECES) | st.text(max_size=5), max_size=60))
def test_any_text_scans_with_offsets_in_bounds(
    documents_policy: DocumentsPolicy, pieces: list[str]
) -> None:
    text = "".join(pieces)
    parts = [
        Part("body", text),
        Part("comments", text[::-1]),
        Part("filename", text[:20] + ".docx"),
    ]
    for profile in ("spc-2016", "spc-2024"):
        result = scan_parts(parts, documents_policy, profile)
        by_name = {p.name: p.text for p in parts}
        for finding in result.findings:
            assert 0 <= finding.start <= finding.end <= len(by_name[finding.part])


@given(st.text(max_size=200))
def test_normalize_offsets_map_back(text: str) -> None:
    folded = normalize(text)
    start, end = folded.original_span(0, len(folded.text))
    assert (start, end) == (0, len(text))
