"""Checks for identifiers: ID, permit and passport numbers, phones, accounts, plates, codes.

Numbers with a checksum are validated (``validators``), not just
pattern-matched; numbers without one count only after the words that name
them (the rule's ``context``, within ``window`` characters). Each span is
claimed once, so one number is one identifier. Patterns never use ``\\b``:
Chinese characters are word characters to Python's ``re``, so digit runs are
bounded with explicit look-arounds on ASCII letters and digits instead.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from typing import Final

from agent.detectors.documents.checker import lexicon
from agent.detectors.documents.checker.context import CJK, Context, Hit, alternation
from agent.detectors.documents.checker.validators import (
    bank_card,
    luhn,
    mobile,
    resident_id15,
    resident_id18,
    uscc,
    vin_check,
)
from agent.detectors.documents.checker.validators import (
    organisation_code as organisation_code_valid,
)
from agent.detectors.documents.policy import DocumentMatch

NO_ALNUM_BEFORE: Final = r"(?<![0-9A-Za-z])"
NO_ALNUM_AFTER: Final = r"(?![0-9A-Za-z])"
REDACTED: Final = "×××"


#: Every character the patterns searched through ``_in_runs`` can match: ASCII letters, any
#: digit, the separators of phone and card numbers, what an e-mail address is made of. No
#: such identifier is shorter than six characters or spans two runs.
_IDENTIFIER_RUN: Final = re.compile(r"[\dA-Za-z+\-()._%@ ][\dA-Za-z+\-()._%@ ]{5,}")


def _in_runs(ctx: Context, index: int, pattern: re.Pattern[str]) -> Iterator[re.Match[str]]:
    """``pattern.finditer`` over part ``index``, searched only in the runs of characters an
    identifier is made of: a judgment is mostly Chinese text, where every pattern would be
    tried at every character. The same matches: look-behinds see the text before a run, and
    the search stops one character after it, so a look-ahead sees the character that ends it."""
    text = ctx.texts[index]
    runs = ctx.identifier_runs.get(index)
    if runs is None:
        runs = ctx.identifier_runs[index] = [m.span() for m in _IDENTIFIER_RUN.finditer(text)]
    shortest = _SHORTEST_MATCH[pattern]
    for start, end in runs:
        if end - start >= shortest:
            yield from pattern.finditer(text, start, min(len(text), end + 1))


def _before(text: str, start: int, window: int) -> str:
    return text[max(0, start - window) : start]


def _has(context: str, words: tuple[str, ...] | list[str]) -> bool:
    return any(w in context for w in words)


def _redactions(
    ctx: Context,
    pattern: re.Pattern[str],
    detail: str,
    accept: Callable[[str], bool] | None = None,
    context: tuple[str, ...] = (),
    window: int = 16,
) -> Iterator[Hit]:
    """Every match that ``accept`` takes, after one of ``context`` when given, not yet claimed."""
    for index, text in enumerate(ctx.texts):
        if context:
            candidates = _candidates(text, pattern, context, window)
        elif pattern in _MADE_OF_RUN_CHARACTERS:
            candidates = _in_runs(ctx, index, pattern)
        else:
            candidates = pattern.finditer(text)
        for found in candidates:
            if accept is not None and not accept(found.group()):
                continue
            if ctx.claim(index, *found.span()):
                yield Hit(index, *found.span(), detail, replacement=REDACTED)


@functools.lru_cache(maxsize=64)
def _words(words: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(alternation(words))


def _candidates(
    text: str, pattern: re.Pattern[str], context: tuple[str, ...], window: int
) -> Iterator[re.Match[str]]:
    """Matches of ``pattern``; with ``context``, only those starting within ``window``
    characters after a context word (searched from the rare words, not the many numbers)."""
    if not context:
        yield from pattern.finditer(text)
        return
    last_end = -1
    for word in _words(context).finditer(text):
        # pos keeps the look-behind working: Python's re looks before pos.
        for found in pattern.finditer(text, word.end(), min(len(text), word.end() + window + 80)):
            if found.start() - word.end() > window:
                break
            if found.start() >= last_end:
                last_end = found.end()
                yield found


_ID18: Final = re.compile(NO_ALNUM_BEFORE + r"\d{17}[\dXx]" + NO_ALNUM_AFTER)
_ID_CONTEXT: Final = (
    "身份证",
    "公民身份号码",
    "身份号码",
    "证件号码",
    "证号",
    "居住证",
    "永久居留",
)


def resident_id(ctx: Context, match: DocumentMatch) -> Iterator[Hit]:
    context = tuple(match.context) or _ID_CONTEXT
    for index, text in enumerate(ctx.texts):
        for found in _in_runs(ctx, index, _ID18):
            value = found.group()
            if resident_id18(value, ctx.today):
                if ctx.claim(index, *found.span()):
                    kind = (
                        "港澳台居民居住证"
                        if value[:2] in ("81", "82", "83")
                        else ("外国人永久居留身份证" if value[0] == "9" else "居民身份证号码")
                    )
                    yield Hit(index, *found.span(), kind, replacement=REDACTED)
            elif _has(_before(text, found.start(), match.window), context) and ctx.claim(
                index, *found.span()
            ):
                yield Hit(
                    index,
                    *found.span(),
                    "疑似身份证号码（校验位不符）",
                    action="review",
                    replacement=REDACTED,
                )


_ID15: Final = re.compile(NO_ALNUM_BEFORE + r"\d{15}" + NO_ALNUM_AFTER)


def legacy_id(ctx: Context, match: DocumentMatch) -> Iterator[Hit]:
    context = tuple(match.context) or _ID_CONTEXT
    yield from _redactions(ctx, _ID15, "15位居民身份证号码", resident_id15, context, match.window)


_PERMIT: Final = re.compile(NO_ALNUM_BEFORE + r"[A-Z]{3}\d{12}" + NO_ALNUM_AFTER)


def residence_permit(ctx: Context, match: DocumentMatch) -> Iterator[Hit]:
    context = tuple(match.context) or ("永久居留", "居留证", "居留许可", "居住证")
    yield from _redactions(ctx, _PERMIT, "外国人永久居留证件号码", None, context, match.window)


_TRAVEL: Final = re.compile(
    NO_ALNUM_BEFORE + r"(?:E[A-HJ-NP-Z0-9]\d{7}|[GKDSP]\d{8}|(?:SE|DE|PE|MA)\d{7}|C[A-Z0-9]\d{7}"
    r"|[HM]\d{8}(?:\d{2})?"
    r"|L\d{8}|T\d{8}|[A-Z][12]\d{8}|[A-Z]{1,2}\d{6}\([0-9A]\)|[157]\d{6}\(\d\)|\d{8}|[A-Z0-9]{7,9})"
    + NO_ALNUM_AFTER
)


def travel_document(ctx: Context, match: DocumentMatch) -> Iterator[Hit]:
    context = tuple(match.context) or (
        "护照",
        "通行证",
        "回乡证",
        "台胞证",
        "旅行证",
        "香港身份证",
        "澳门身份证",
        "台湾身份证",
    )
    yield from _redactions(
        ctx,
        _TRAVEL,
        "护照或往来通行证件号码",
        lambda value: any(c.isdigit() for c in value),
        context,
        match.window,
    )


_MOBILE: Final = re.compile(
    r"(?<![0-9A-Za-z])(?:\+?86[- ]?)?1[3-9]\d(?:[- ]?\d{4}){2}(?![0-9A-Za-z])"
)
_PHONE_CONTEXT: Final = ("电话", "手机", "联系方式", "微信", "致电", "拨打", "短信")


def _not_a_phone(text: str, start: int, window: int) -> bool:
    before = _before(text, start, window)
    return _has(before, lexicon.NOT_PERSONAL_NUMBER_CONTEXT) and not _has(
        before[-6:], _PHONE_CONTEXT
    )


def mobile_phone(ctx: Context, match: DocumentMatch) -> Iterator[Hit]:
    for index, text in enumerate(ctx.texts):
        for found in _in_runs(ctx, index, _MOBILE):
            digits = re.sub(r"\D", "", found.group())
            if not mobile(digits) or _not_a_phone(text, found.start(), match.window):
                continue
            if ctx.claim(index, *found.span()):
                yield Hit(index, *found.span(), "手机号码", replacement=REDACTED)


_LANDLINE: Final = re.compile(
    r"(?<![\d×Xx*-])(?:\(0[1-9]\d{1,2}\)|0[1-9]\d{1,2}-)[2-9]\d{6,7}(?:-\d{1,4})?(?!\d)"
    r"|(?<![\d-])[48]00-?\d{3}-?\d{4}(?!\d)"
)


def landline_phone(ctx: Context, match: DocumentMatch) -> Iterator[Hit]:
    for index, text in enumerate(ctx.texts):
        for found in _in_runs(ctx, index, _LANDLINE):
            if _not_a_phone(text, found.start(), match.window):
                continue
            if ctx.claim(index, *found.span()):
                if found.group()[:3] in ("400", "800"):
                    yield Hit(
                        index,
                        *found.span(),
                        "400/800 电话（多为单位号码）",
                        action="review",
                        replacement=REDACTED,
                    )
                else:
                    yield Hit(index, *found.span(), "固定电话号码", replacement=REDACTED)


_CARD: Final = re.compile(r"(?<![0-9A-Za-z])(?:\d{4}[ -]?){3,4}\d{1,4}(?![0-9A-Za-z])")
_ACCOUNT: Final = re.compile(r"(?<![0-9A-Za-z])\d(?:[ -]?\d){8,29}(?![0-9A-Za-z])")
_ACCOUNT_CONTEXT: Final = (
    "账号",
    "帐号",
    "账户",
    "帐户",
    "卡号",
    "开户行",
    "转账至",
    "银行卡",
    "存折",
)


def bank_account(ctx: Context, match: DocumentMatch) -> Iterator[Hit]:
    context = tuple(match.context) or _ACCOUNT_CONTEXT
    for index, text in enumerate(ctx.texts):
        for found in _in_runs(ctx, index, _CARD):
            digits = re.sub(r"\D", "", found.group())
            before = _before(text, found.start(), match.window)
            if not bank_card(digits):
                continue
            if _has(before, lexicon.NOT_PERSONAL_NUMBER_CONTEXT) and not _has(before, context):
                continue
            if ctx.claim(index, *found.span()):
                yield Hit(index, *found.span(), "银行卡号", replacement=REDACTED)
        for found in _candidates(text, _ACCOUNT, context, 8):
            # Without a checksum only the words right before make it an account; an amount
            # after 账户 (转账至其账户，金额123456789元) is not one.
            before = _before(text, found.start(), 8)
            unit = text[found.end() : found.end() + 1]
            if unit in ("元", "万", "角", "分", "笔", "次", "天", "个"):
                continue
            if _has(before, context) and ctx.claim(index, *found.span()):
                yield Hit(index, *found.span(), "银行账号", replacement=REDACTED)


_PROVINCE_ABBR: Final = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_PLATE: Final = re.compile(
    rf"[{_PROVINCE_ABBR}][A-HJ-NP-Z][·• ]?(?=[A-HJ-NP-Z0-9]{{0,5}}\d)"
    r"(?:[A-HJK][A-HJ-NP-Z0-9]\d{4}|\d{5}[A-HJK]|[A-HJ-NP-Z0-9]{4}[A-HJ-NP-Z0-9挂学警港澳])"
    r"(?![A-Za-z0-9])"
)


def licence_plate(ctx: Context, match: DocumentMatch) -> Iterator[Hit]:
    for index, text in enumerate(ctx.texts):
        for found in _PLATE.finditer(text):
            if ctx.claim(index, *found.span()):
                kind = (
                    "新能源汽车号牌"
                    if len(found.group().replace("·", "").strip()) == 8
                    else "机动车号牌"
                )
                yield Hit(index, *found.span(), kind, replacement=found.group()[:2] + "×××××")


_PROPERTY: Final = re.compile(
    rf"[{_PROVINCE_ABBR}] ?\(\d{{4}}\) ?[{CJK}]{{1,12}}?不动产(?:权|证明)第 ?\d{{7}} ?号"
    rf"|房权证[^,;。\n]{{0,20}}?第? ?\d+ ?号"
    rf"|[国集]用 ?\(\d{{4}}\) ?第? ?\d+ ?号"
    r"|(?<![0-9A-Za-z])\d{12}[A-Z]{2}\d{5}[FLQW]\d{8}(?![0-9A-Za-z])"
)
_CERT_CONTEXT: Final = re.compile(
    r"(?:不动产权证书?|房产证|房屋所有权证|土地使用权证|产权证|机动车登记证书|船舶所有权登记证书)"
    r"(?:号码|编号|号)?[:为是 ]{0,3}(?P<number>[A-Z0-9][A-Z0-9-]{5,29})(?![0-9A-Za-z])"
)


def property_certificate(ctx: Context, match: DocumentMatch) -> Iterator[Hit]:
    for index, text in enumerate(ctx.texts):
        for found in _PROPERTY.finditer(text):
            if ctx.claim(index, *found.span()):
                yield Hit(index, *found.span(), "不动产权属证书编号", replacement=REDACTED)
        for found in _CERT_CONTEXT.finditer(text):
            span = found.span("number")
            if any(c.isdigit() for c in found.group("number")) and ctx.claim(index, *span):
                yield Hit(index, *span, "权属证书编号", replacement=REDACTED)


_VIN: Final = re.compile(NO_ALNUM_BEFORE + r"[A-HJ-NPR-Z0-9]{17}" + NO_ALNUM_AFTER)
_ENGINE: Final = re.compile(
    r"(?:发动机号(?:码)?|车架号(?:码)?|车辆识别代号|识别代码|VIN|串号|IMEI)[:为 ]{0,3}"
    r"(?P<number>[A-Z0-9]{6,17})(?![0-9A-Za-z])"
)


def vehicle_identifier(ctx: Context, match: DocumentMatch) -> Iterator[Hit]:
    for index, text in enumerate(ctx.texts):
        for found in _ENGINE.finditer(text):
            span = found.span("number")
            if any(c.isdigit() for c in found.group("number")) and ctx.claim(index, *span):
                yield Hit(index, *span, "车架号、发动机号或设备串号", replacement=REDACTED)
        for found in _in_runs(ctx, index, _VIN):
            value = found.group()
            if value.isdigit() or not any(c.isdigit() for c in value):
                continue
            if vin_check(value) and ctx.claim(index, *found.span()):
                yield Hit(index, *found.span(), "车辆识别代号（VIN）", replacement=REDACTED)
        for found in _in_runs(ctx, index, _ID15):
            near = _before(text, found.start(), match.window)
            if (
                luhn(found.group())
                and _has(near, ("IMEI", "串号"))
                and ctx.claim(index, *found.span())
            ):
                yield Hit(index, *found.span(), "手机串号（IMEI）", replacement=REDACTED)


_EMAIL: Final = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def email(ctx: Context, match: DocumentMatch) -> Iterator[Hit]:
    yield from _redactions(ctx, _EMAIL, "电子邮箱")


_MESSAGING: Final = re.compile(
    r"(?:QQ|qq)(?:号码|号)?[:为 ]{0,3}(?P<qq>[1-9]\d{4,10})(?!\d)"
    r"|微信(?:号|账号|名)?[:为 ]{0,3}"
    r"(?P<wx>[A-Za-z][-_A-Za-z0-9]{5,19}|1[3-9]\d{9})(?![0-9A-Za-z_-])"
    r"|支付宝(?:账号|帐号|账户)?[:为 ]{0,3}"
    r"(?P<ali>[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}|1[3-9]\d{9})"
)


def messaging_account(ctx: Context, match: DocumentMatch) -> Iterator[Hit]:
    for index, text in enumerate(ctx.texts):
        for found in _MESSAGING.finditer(text):
            group = next(g for g in ("qq", "wx", "ali") if found.group(g))
            span = found.span(group)
            if ctx.claim(index, *span):
                yield Hit(
                    index,
                    *span,
                    {"qq": "QQ号", "wx": "微信号", "ali": "支付宝账号"}[group],
                    replacement=REDACTED,
                )


_USCC: Final = re.compile(
    NO_ALNUM_BEFORE + r"[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}" + NO_ALNUM_AFTER
)
_ORG: Final = re.compile(NO_ALNUM_BEFORE + r"[0-9A-Z]{8}-[0-9X]" + NO_ALNUM_AFTER)


def individual_business_code(ctx: Context, match: DocumentMatch) -> Iterator[Hit]:
    yield from _redactions(
        ctx,
        _USCC,
        "个体工商户统一社会信用代码（属个人信息）",
        lambda value: value.startswith("92") and uscc(value),
    )


def organisation_code(ctx: Context, match: DocumentMatch) -> Iterator[Hit]:
    context = tuple(match.context) or ("律师事务所", "执业许可证", "执业证")
    for index, text in enumerate(ctx.texts):
        for found in _in_runs(ctx, index, _USCC):
            value = found.group()
            if value.startswith("92") or not uscc(value):
                continue
            if _has(_before(text, found.start(), match.window), context):
                continue
            if ctx.claim(index, *found.span()):
                yield Hit(index, *found.span(), "单位统一社会信用代码", replacement=REDACTED)
        for found in _in_runs(ctx, index, _ORG):
            if organisation_code_valid(found.group()) and ctx.claim(index, *found.span()):
                yield Hit(index, *found.span(), "组织机构代码", replacement=REDACTED)


#: The patterns searched through ``_in_runs`` (see ``_IDENTIFIER_RUN``), with the fewest
#: characters each can match: a shorter run holds none of its matches.
_SHORTEST_MATCH: Final = {
    _ID18: 18,
    _ID15: 15,
    _VIN: 17,
    _USCC: 18,
    _ORG: 10,  # 12345678-9
    _MOBILE: 11,
    _LANDLINE: 10,  # 4001234567
    _CARD: 13,  # (\d{4}){3} and a digit
    _EMAIL: 6,  # a@b.cn
}
_MADE_OF_RUN_CHARACTERS: Final = frozenset(_SHORTEST_MATCH)
