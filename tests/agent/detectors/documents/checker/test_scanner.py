# ruff: noqa: E501  (judgment text reads best on one line)
"""The scanner over whole judgments: what fires, where, in which profile, and what never does."""

from __future__ import annotations

from datetime import date

from agent.detectors.documents.checker.context import Part
from agent.detectors.documents.checker.scanner import scan_parts, scan_text
from agent.detectors.documents.policy import DocumentsPolicy

CRIMINAL = """河南省郑州市金水区人民法院
刑 事 判 决 书
（2023）豫0105刑初123号
公诉机关河南省郑州市金水区人民检察院。
被告人张三，男，1990年5月1日出生，汉族，住河南省郑州市金水区文化路88号3栋2单元501室，公民身份号码11010519491231002X。
辩护人李律，河南某律师事务所律师，执业证号14101201910123456。
河南省郑州市金水区人民检察院以郑金检刑诉〔2023〕100号起诉书指控被告人张三犯故意伤害罪，于2023年6月1日向本院提起公诉。
经审理查明，2023年3月1日，被告人张三驾驶豫A12345号小型轿车与被害人王小明发生争执，致被害人王小明轻伤二级。证人赵六、钱七的证言证实上述事实。被告人张三的手机号码１３８１２３４５６７８，银行卡号6222021234567890123。
依照《中华人民共和国刑法》第二百三十四条第一款之规定，判决如下：
审 判 长  刘大伟
人民陪审员  陈红
书 记 员  周小丽
"""


def _by_rule(result: object) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for finding in result.findings:  # type: ignore[attr-defined]  # a ScanResult passed as object
        out.setdefault(finding.rule_id, []).append(finding.excerpt)
    return out


def test_criminal_judgment_spc_2024(documents_policy: DocumentsPolicy) -> None:
    result = scan_text(CRIMINAL, documents_policy, "spc-2024", today=date(2026, 1, 1))
    rules = _by_rule(result)
    assert result.verdict == "needs_redaction"
    assert len(rules["documents.party-name"]) == 4  # every mention of the defendant
    assert len(rules["documents.protected-person-name"]) == 4  # victim twice, two witnesses
    for rule in ("resident-id", "address", "licence-plate", "mobile-phone", "bank-account"):
        assert len(rules[f"documents.{rule}"]) == 1, rule
    # The keep-list: judges, clerk, lawyer and his licence number, case and document numbers.
    for finding in result.findings:
        covered = CRIMINAL[finding.start : finding.end]
        for kept in ("刘大伟", "陈红", "周小丽", "李律", "14101201910123456", "123号", "100号"):
            assert kept not in covered
    # Offsets point into the text as given, across the full-width phone number.
    phone = next(f for f in result.findings if f.rule_id == "documents.mobile-phone")
    assert CRIMINAL[phone.start : phone.end] == "１３８１２３４５６７８"
    # Excerpts are masked.
    assert all("13812345678" not in f.excerpt and "张三" not in f.excerpt for f in result.findings)


def test_spc_2016_keeps_the_adult_defendant_but_not_victims(
    documents_policy: DocumentsPolicy,
) -> None:
    rules = _by_rule(scan_text(CRIMINAL, documents_policy, "spc-2016", today=date(2026, 1, 1)))
    assert "documents.party-name" not in rules
    assert len(rules["documents.protected-person-name"]) == 4


def test_identifiers_glued_to_chinese_are_found() -> None:
    """No \\b: an ID directly between Chinese characters still matches."""
    from agent.policy.loader import load_policy_dir
    from tests.agent.detectors.documents.conftest import REPO

    policy = load_policy_dir(REPO / "policies").section("documents")
    result = scan_text("其身份证号11010519491231002X现住", policy)  # type: ignore[arg-type]  # section() gives the base PolicyDocument
    assert [f.rule_id for f in result.findings] == ["documents.resident-id"]


def test_name_propagates_to_every_part(documents_policy: DocumentsPolicy) -> None:
    parts = [
        Part(
            "body",
            "刑事判决书\n(2024)京0105刑初9号\n被告人孙某，男，1990年3月1日出生。\n被告人孙某殴打被害人王小明。",
        ),
        Part("header:1", "王小明被伤害案"),
        Part("comments", "核对王小明的伤情"),
        Part("filename", "王小明.docx"),
    ]
    result = scan_parts(parts, documents_policy)
    hit_parts = {f.part for f in result.findings if f.rule_id == "documents.protected-person-name"}
    assert hit_parts == {"body", "header:1", "comments", "filename"}


def test_collision_and_masked_forms(documents_policy: DocumentsPolicy) -> None:
    text = "民事判决书\n原告张某，男，1980年1月1日出生。\n被告张某，女，1985年1月1日出生。\n住址河南省郑州市金水区××路××号。"
    rules = _by_rule(scan_text(text, documents_policy))
    assert list(rules) == ["documents.pseudonym-collision"]


def test_clean_judgment_is_publishable(documents_policy: DocumentsPolicy) -> None:
    text = (
        "北京市朝阳区人民法院\n民事判决书\n(2024)京0105民初1号\n"
        "原告赵某，男，1980年1月1日出生，住北京市朝阳区。\n"
        "被告北京某科技有限公司，住所地北京市朝阳区建国路1号。\n"
        "法定代表人钱某，该公司经理。\n委托诉讼代理人李大明，北京某律师事务所律师。\n"
        "原告赵某与被告北京某科技有限公司买卖合同纠纷一案，本院于2024年1月5日立案后，"
        "依法适用简易程序，公开开庭进行了审理。依照《中华人民共和国民法典》第五百七十七条之规定，判决如下："
        "被告于本判决生效之日起十日内支付原告货款50000元。\n审判员  孙立\n二〇二四年三月一日\n书记员  周文\n"
    )
    for profile in ("spc-2016", "spc-2024"):
        result = scan_text(text, documents_policy, profile)
        assert result.verdict == "publishable", [(f.rule_id, f.excerpt) for f in result.findings]


def test_do_not_publish_grounds(documents_policy: DocumentsPolicy) -> None:
    minor = "刑事判决书\n(2024)京0105刑初9号\n被告人孙某，男，2008年3月1日出生。\n经审理查明，被告人孙某于2024年1月5日盗窃。"
    assert scan_text(minor, documents_policy).verdict == "do_not_publish"
    adult = minor.replace("2008年", "1990年")
    assert scan_text(adult, documents_policy).verdict == "publishable"
    divorce = "民事判决书\n(2024)京0105民初3号\n原告赵某与被告钱某离婚纠纷一案。"
    assert scan_text(divorce, documents_policy).verdict == "do_not_publish"
    after = "民事判决书\n(2024)京0105民初3号\n原告赵某与被告钱某离婚后财产纠纷一案。"
    assert scan_text(after, documents_policy).verdict == "needs_review"


def test_leak_in_metadata_but_not_common_words(documents_policy: DocumentsPolicy) -> None:
    body = "民事判决书\n原告张某，男，1980年1月1日出生。\n本院已张贴公告。"
    parts = [
        Part("body", body),
        Part("comments", "张贴公告前核对张建国的地址"),
        Part("filename", "张建国.docx"),
    ]
    result = scan_parts(parts, documents_policy)
    leaks = [
        (f.part, f.replacement)
        for f in result.findings
        if f.rule_id == "documents.hidden-name-leak"
    ]
    assert leaks == [("comments", "张某"), ("filename", "张某")]


def test_amounts_after_account_words_are_not_accounts(documents_policy: DocumentsPolicy) -> None:
    text = "被告人转账至其账户，金额123456789元。开户行中国银行，账号0200001234567890。"
    result = scan_text(text, documents_policy)
    assert [text[f.start : f.end] for f in result.findings] == ["0200001234567890"]


def test_county_names_with_town_characters_are_not_addresses(
    documents_policy: DocumentsPolicy,
) -> None:
    assert scan_text("原告李某某，女，住江苏省南京市鼓楼区。", documents_policy).findings == ()
    hit = scan_text("原告李某某，女，住江苏省南京市鼓楼区中山路3号2楼。", documents_policy).findings
    assert [f.excerpt[0] for f in hit] == ["中"]


def test_policy_keep_list(documents_policy: DocumentsPolicy) -> None:
    text = "证人李明亮的证言。"
    assert scan_text(text, documents_policy).findings
    local = documents_policy.model_copy(update={"lists": {"keep": ["李明亮"]}})
    assert scan_text(text, local).findings == ()


def test_foreign_party_name_is_found(documents_policy: DocumentsPolicy) -> None:
    text = "民事判决书\n原告John Smith，男，1980年1月1日出生，美国国籍。\n原告John Smith诉称。"
    result = scan_text(text, documents_policy, "spc-2024")
    assert [f.replacement for f in result.findings] == ["J", "J"]
