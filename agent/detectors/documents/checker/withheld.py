"""Checks for what must be withheld: grounds not to publish a document, and sensitive passages.

Do-not-publish grounds (a minor defendant, mediation, family causes, state
secrets, a non-public hearing) make ``whole_document`` hits: no replacement,
no masking. Sensitive passages (health, technical investigation, private
matters, trade secrets) are wording a person reviews. Both are found by
wording: the built-in terms plus the rule's own ``terms``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from typing import Final

from agent.detectors.documents.checker import lexicon
from agent.detectors.documents.checker.context import (
    Context,
    Hit,
    age_at,
    alternation,
    birth_in,
    chinese_number,
    spaced_pattern,
)
from agent.detectors.documents.checker.validators import birth_date
from agent.detectors.documents.policy import DocumentMatch


def _term_hits(
    ctx: Context,
    terms: tuple[str, ...] | list[str],
    detail: str,
    whole: bool = False,
    parts: tuple[int, ...] | None = None,
) -> Iterator[Hit]:
    if not terms:
        return
    pattern = re.compile(alternation(terms))
    for index, text in enumerate(ctx.texts):
        if parts is not None and index not in parts:
            continue
        for found in pattern.finditer(text):
            yield Hit(
                index,
                found.start(),
                found.end(),
                f"{detail}：{found.group()}",
                whole_document=whole,
            )


MINOR_TERMS: Final = (
    "未成年人犯罪",
    "犯罪时已满十四周岁不满十八周岁",
    "犯罪时已满十六周岁不满十八周岁",
    "未成年被告人",
    "未成年罪犯",
)
#: Wording that says someone is under eighteen; whose age it is depends on the sentence.
_UNDER_EIGHTEEN: Final = re.compile(
    r"(?:作案|犯罪|案发|行为)时(?:尚)?(?:未满|不满|未年满)十八周岁"
    r"|(?:作案|犯罪|案发)时(?:系|为|尚系|仍系)未成年人"
    r"|系未成年人|(?:尚)?未满十八周岁|不满十八周岁|合适成年人|犯罪记录封存"
)
_DEFENDANT_ROLES: Final = ("被告人", "罪犯", "上诉人", "原审被告人", "被执行人", "犯罪嫌疑人")
_OTHER_ROLES: Final = ("被害人", "证人", "附带民事诉讼原告人", "法定代理人", "被监护人")
_ROLE_IN_SENTENCE: Final = re.compile(alternation(_DEFENDANT_ROLES + _OTHER_ROLES))
_AGE_IN_WORDS: Final = re.compile(
    r"(?:现年|时年|年仅|当时|案发时|作案时)([一二三四五六七八九十\d]{1,3})(?:周)?岁"
)


def _whose(text: str, position: int) -> str | None:
    """The role the wording at ``position`` is about: the last role word before it in its
    sentence, else in the sentence before; None when neither names one."""
    sentence = text.rfind("。", 0, position)
    previous = text.rfind("。", 0, max(sentence, 0))
    for begin in (sentence + 1, previous + 1):
        roles = _ROLE_IN_SENTENCE.findall(text, begin, position)
        if roles:
            return str(roles[-1])
    return None


def minor_defendant(ctx: Context, match: DocumentMatch) -> Iterator[Hit]:
    """A defendant under eighteen: the usual wording; wording about a minor (系未成年人,
    作案时未满十八周岁, 合适成年人) when the sentence is about a defendant, not a victim or
    witness; an age in words in a defendant's clause; or the date of birth against the
    first date of the facts. A minor victim does not make a minor-defendant case."""
    if not ctx.criminal:
        return
    for hit in _term_hits(ctx, MINOR_TERMS + tuple(match.terms), "未成年人犯罪", whole=True):
        if not ctx.kept(hit.part, hit.start, hit.end):  # 《预防未成年人犯罪法》 is a citation
            yield hit
    for index, text in enumerate(ctx.texts):
        if "十八周岁" not in text and "成年" not in text and "犯罪记录封存" not in text:
            continue
        for found in _UNDER_EIGHTEEN.finditer(text):
            role = _whose(text, found.start())
            if role is None or role in _DEFENDANT_ROLES:
                yield Hit(
                    index, *found.span(), f"未成年人犯罪：{found.group()}", whole_document=True
                )
    defendants = [p for p in ctx.people if p.role in _DEFENDANT_ROLES and p.line_text]
    for person in defendants:
        said = _AGE_IN_WORDS.search(person.line_text)
        age = chinese_number(said.group(1)) if said else None
        if said and age is not None and age < 18:
            start = person.line_start + said.start()
            yield Hit(
                person.part,
                start,
                person.line_start + said.end(),
                f"被告人未满十八周岁（{age}岁）",
                whole_document=True,
            )
    last_party = max(
        (p.line_start + len(p.line_text) for p in ctx.people if p.part == 0 and p.line_text),
        default=0,
    )
    offence = _first_offence_date(ctx.main_text(), last_party) if ctx.texts else None
    if offence is None:
        return
    for person in defendants:
        born = birth_in(person.line_text)
        if born and born[0] <= offence and age_at(born[0], offence) < 18:
            start = person.line_start + born[1][0]
            yield Hit(
                person.part,
                start,
                person.line_start + born[1][1],
                f"被告人犯罪时未满十八周岁（{age_at(born[0], offence)}周岁）",
                whole_document=True,
            )


def _first_offence_date(text: str, after: int) -> date | None:
    """The first date in the facts the court found (else in the charge), not a birth date."""
    found = re.search(r"查明", text[after:]) or re.search(r"指控", text[after:])
    start = after + (found.end() if found else 0)
    pattern = r"(\d{4})年(\d{1,2})月(?:(\d{1,2})日)?(?![\d出生])"
    for candidate in re.finditer(pattern, text[start:]):
        when = birth_date(
            f"{candidate.group(1)}{int(candidate.group(2)):02d}{int(candidate.group(3) or 1):02d}"
        )
        if when:
            return when
    return None


def mediation(ctx: Context, match: DocumentMatch) -> Iterator[Hit]:
    spaced = ctx.head(600)
    head = re.sub(r"[ \t\u3000]", "", spaced)  # titles are often typeset 民 事 调 解 书
    title = re.search(spaced_pattern("调解书"), spaced)
    if title and not re.search(r"行政调解书|公益", head):
        yield _main_hit(ctx, *title.span(), "以调解方式结案的调解书")
        return
    confirm = re.search(r"确认[^。\n]{0,60}调解协议[^。\n]{0,20}(?:有效|效力)", ctx.main_text())
    if confirm and (re.search(r"民特|司法确认", head) or "确认人民调解协议" in confirm.group()):
        yield _main_hit(ctx, *confirm.span(), "确认人民调解协议效力的裁定")
    yield from _term_hits(ctx, match.terms, "调解结案", whole=True, parts=tuple(ctx.main_parts()))


def _main_hit(ctx: Context, start: int, end: int, detail: str) -> Hit:
    """A do-not-publish hit at a span of ``main_text()`` (which may cross a page break)."""
    part, local = ctx.locate(start)
    length = min(end - start, len(ctx.texts[part]) - local)
    return Hit(part, local, local + length, detail, whole_document=True)


FAMILY_CAUSES: Final = (
    "离婚纠纷",
    "抚养纠纷",
    "抚养费纠纷",
    "变更抚养关系纠纷",
    "监护权纠纷",
    "撤销监护人资格",
    "变更监护关系",
    "变更监护人",
    "指定监护人",
)
FAMILY_RELATED_CAUSES: Final = (
    "离婚后财产纠纷",
    "离婚后损害责任纠纷",
    "探望权纠纷",
    "同居关系纠纷",
    "婚约财产纠纷",
)


def _cause_hits(ctx: Context, causes: tuple[str, ...], detail: str) -> Iterator[Hit]:
    if not ctx.texts:
        return
    head = ctx.head()
    for cause in causes:
        if cause in ctx.cause or (not ctx.cause and cause in head):
            position = head.find(cause)
            if position >= 0:
                yield _main_hit(ctx, position, position + len(cause), f"{detail}：{cause}")
                return


def family_cause(ctx: Context, match: DocumentMatch) -> Iterator[Hit]:
    yield from _cause_hits(ctx, FAMILY_CAUSES + tuple(match.terms), "离婚或子女抚养、监护案件")


def family_related_cause(ctx: Context, match: DocumentMatch) -> Iterator[Hit]:
    yield from _cause_hits(ctx, FAMILY_RELATED_CAUSES + tuple(match.terms), "婚姻家庭相关案件")


def state_secret(ctx: Context, match: DocumentMatch) -> Iterator[Hit]:
    terms = ("国家秘密", "绝密", "机密级", "秘密级", "涉密", *match.terms)
    yield from _term_hits(ctx, terms, "涉及国家秘密（须人工确认）", whole=True)


def non_public_hearing(ctx: Context, match: DocumentMatch) -> Iterator[Hit]:
    yield from _term_hits(
        ctx, ("不公开开庭", "不公开审理", *match.terms), "不公开审理的案件", whole=True
    )


_HEALTH_TERMS: Final = (
    "艾滋病",
    "HIV",
    "梅毒",
    "乙肝",
    "乙型肝炎",
    "丙肝",
    "精神分裂",
    "抑郁症",
    "双相情感障碍",
    "不孕",
    "流产",
    "性病",
    "癫痫",
    "病历号",
    "住院号",
    "病案号",
    "医保卡号",
    "精神病",
    "智力残疾",
)


#: A health word inside an institution's name (精神病司法鉴定所, 精神病医院) names the
#: institution, not anyone's health.
_INSTITUTION_AFTER: Final = re.compile(r"(?:司法鉴定|鉴定|医院|防治|专科|研究)")


def health(ctx: Context, match: DocumentMatch) -> Iterator[Hit]:
    for hit in _term_hits(ctx, _HEALTH_TERMS + tuple(match.terms), "健康状况信息"):
        if not _INSTITUTION_AFTER.match(ctx.texts[hit.part], hit.end):
            yield hit


def technical_investigation(ctx: Context, match: DocumentMatch) -> Iterator[Hit]:
    terms = (
        "技术侦查",
        "技侦",
        "监听",
        "侦听",
        "秘密监控",
        "特情",
        "线人",
        "卧底",
        "控制下交付",
        *match.terms,
    )
    yield from _term_hits(ctx, terms, "技术侦查措施")


def private_matters(ctx: Context, match: DocumentMatch) -> Iterator[Hit]:
    if not any(word in ctx.cause for word in lexicon.PRIVATE_LIFE_CAUSE_WORDS):
        return
    terms = (
        "婚外",
        "不正当男女关系",
        "性生活",
        "出轨",
        "通奸",
        "私生",
        "第三者",
        "性关系",
        *match.terms,
    )
    yield from _term_hits(ctx, terms, "家事或人格权案件中的个人隐私")


def trade_secret(ctx: Context, match: DocumentMatch) -> Iterator[Hit]:
    terms = ("商业秘密", "技术秘密", "配方", "源代码", "客户名单", "工艺参数", *match.terms)
    for hit in _term_hits(ctx, terms, "可能涉及商业秘密"):
        text = ctx.texts[hit.part]
        before = text[max(0, hit.start - 1) : hit.start]
        if before and before in "分调搭支" and text.startswith("配方", hit.start):
            continue  # 分配方案, 调配方式: 配方 is not a recipe there
        yield hit
