"""Where a name starts and ends in running text; parties wherever their role word stands."""

from __future__ import annotations

from datetime import date

import pytest

from agent.detectors.documents.checker.reader import read_name, words
from agent.detectors.documents.checker.scanner import scan_text
from agent.detectors.documents.policy import DocumentsPolicy


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("曹建谈恋爱期间", "曹建"),  # a three-character word starts at the last character
        ("钟丽报案后", "钟丽"),
        ("傅强个人账户", "傅强"),
        ("柏青发生冲突", "柏青"),
        ("张三诈骗罪一审", "张三"),
        ("阙小波报警后", "阙小波"),
        ("危长生持刀威胁", "危长生"),
        ("张国庆伙同", "张国庆"),
        ("赛福强到庭", "赛福强"),
        ("欧阳俊杰在", "欧阳俊杰"),
        ("鲜于雪莲的再审申请", "鲜于雪莲"),
        ("阿不都热合曼·买买提持啤酒瓶", "阿不都热合曼·买买提"),
        ("古丽娜尔·艾力证实", "古丽娜尔·艾力"),
        ("何某、韦春生", "何某"),
        ("王××的", "王××"),
        ("李某1与", "李某1"),
        ("曾怡瑞发生争执", "曾怡瑞"),  # 曾, 于, 向, 方 are common surnames too
        ("于文华，男", "于文华"),
    ],
)
def test_a_name_ends_where_the_name_ends(text: str, name: str) -> None:
    found = read_name(text, 0)
    assert found is not None
    assert text[found[0] : found[1]] == name


@pytest.mark.parametrize(
    "text",
    [
        "陈述证实",
        "证言",
        "于本判决生效之日起",
        "应按约交纳",
        "方提交",
        "苏州市公安局",
        "石家庄某某公司",
    ],
)
def test_words_after_a_role_are_no_name(text: str) -> None:
    assert read_name(text, 0) is None


def test_the_word_list_is_jiebas_common_words() -> None:
    table = words()
    assert len(table) > 20_000
    assert "谈恋爱" in table and "发生" in table
    assert "张三" not in table  # person names are left out


SINGLE_LINE = (
    "赖志鹏、傅国梁敲诈勒索罪一审刑事判决书江西省赣州市章贡区人民法院刑事判决书（2025）赣0702刑初233号"
    "公诉机关江西省赣州市章贡区人民检察院。被告人赖志鹏，男，1993年11月2日出生，汉族，住江西省赣州市章贡区。"
    "被告人傅国梁，男，1995年4月19日出生，汉族，住江西省赣州市南康区。辩护人欧丽华，江西章江律师事务所律师。"
    "章贡区人民检察院指控：被害人曹建谈恋爱期间与他人发生纠纷，被告人赖志鹏、傅国梁以将曹建的私事告知其家人相要挟，"
    "向曹建索要人民币三万元。审判长郑晓燕审判员马骏人民陪审员陶然二〇二五年四月二十二日书记员邹敏"
)


def test_single_line_judgment(documents_policy: DocumentsPolicy) -> None:
    result = scan_text(SINGLE_LINE, documents_policy, "spc-2024", today=date(2026, 12, 1))
    covered = {SINGLE_LINE[f.start : f.end] for f in result.findings}
    assert covered == {"赖志鹏", "傅国梁", "曹建"}  # not the judges, the clerk, the lawyer
    titles = [f for f in result.findings if f.start < 20]
    assert {SINGLE_LINE[f.start : f.end] for f in titles} == {"赖志鹏", "傅国梁"}
    assert {f.replacement for f in result.findings if SINGLE_LINE[f.start : f.end] == "曹建"} == {
        "曹某"
    }
