"""Property tests: any text, however odd, scans without error and with offsets in bounds."""

from __future__ import annotations

from itertools import pairwise

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
    # Everything maps back but the line breaks dropped at either end.
    assert set(text[:start]) <= {"\r", "\n"} and set(text[end:]) <= {"\r", "\n"}


@given(st.lists(st.sampled_from(["张三", "，", "1", "a", "被告人", "审判长", "。"]), max_size=30))
def test_line_breaks_do_not_change_the_text_the_checks_see(pieces: list[str]) -> None:
    """A line break between two pieces is dropped unless it keeps two ASCII words apart."""
    joined = "".join(pieces)
    broken = "\n".join(pieces)
    if not any(
        a[-1:].isascii() and a[-1:].isalnum() and b[:1].isascii() and b[:1].isalnum()
        for a, b in pairwise(pieces)
    ):
        assert normalize(broken).text == normalize(joined).text
