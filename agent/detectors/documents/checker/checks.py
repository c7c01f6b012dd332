"""The checks a document rule can name (``DocumentMatch.check``), one function each.

Every check reads the normalised parts of a ``Context`` and yields ``Hit``s in
normalised offsets. Patterns never use ``\\b``: Chinese characters are word
characters to Python's ``re``, so digit runs are bounded with explicit
look-arounds on ASCII letters and digits instead.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from datetime import date
from typing import Final

from agent.detectors.documents.checker import lexicon
from agent.detectors.documents.checker.normalize import is_masked
from agent.detectors.documents.checker.scanner import Context, Hit, Person
from agent.detectors.documents.checker.validators import (
    bank_card,
    birth_date,
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

Check = Callable[[Context, DocumentMatch], Iterator[Hit]]

CJK: Final = "\u4e00-\u9fff"
NO_ALNUM_BEFORE: Final = r"(?<![0-9A-Za-z])"
NO_ALNUM_AFTER: Final = r"(?![0-9A-Za-z])"
MASK_CLASS: Final = "某×*Xx"
REDACTED: Final = "×××"
_MASKED_NAME: Final = re.compile(
    rf"^[{CJK}]{{1,2}}(?:[某×*]+|[Xx]{{2,}})[甲乙丙丁戊己庚辛壬癸\d]*$|^某[甲乙丙丁\d]+$"
)
_DATE: Final = re.compile(r"(\d{4})年(\d{1,2})月(?:(\d{1,2})日)?")


def _alternation(words: tuple[str, ...] | list[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))


def _spaced(word: str) -> str:
    """Judges' titles are often typeset with spaces between characters (审 判 长)."""
    return r"[ \t\u3000]*".join(re.escape(c) for c in word)


_KEEP_TITLES: Final = "|".join(
    _spaced(r) for r in sorted(lexicon.KEEP_ROLES, key=len, reverse=True)
)
_KEEP_ROLE_LINE: Final = re.compile(
    rf"(?m)^[ \t\u3000]*(?:{_KEEP_TITLES})"
    rf"[ \t\u3000:]*(?P<name>[{CJK}·]{{2,12}}|[{CJK}][ \t\u3000]+[{CJK}])[ \t\u3000]*$"
)
_KEEP_ROLE_INLINE: Final = re.compile(
    rf"(?:{_alternation(lexicon.KEEP_ROLES)})(?P<name>[{CJK}]{{2,3}})(?=[,、。;:)\s]|出庭|到庭|担任|记录)"
)


def keep_role_names(text: str) -> Iterator[tuple[int, int, str]]:
    """Judges, assessors, assistants, clerks and prosecutors: names that stay published."""
    for pattern in (_KEEP_ROLE_LINE, _KEEP_ROLE_INLINE):
        for match in pattern.finditer(text):
            name = re.sub(r"\s+", "", match.group("name"))
            if 2 <= len(name) <= 12:
                yield match.start("name"), match.end("name"), name


def is_masked_name(name: str) -> bool:
    return bool(_MASKED_NAME.match(name))


_COMPOUND: Final = frozenset(lexicon.COMPOUND_SURNAMES)


def surname_of(name: str) -> str:
    return name[:2] if name[:2] in _COMPOUND else name[:1]


_LATIN_NAME: Final = re.compile(r"[A-Z][A-Za-z'.-]+(?: [A-Z][A-Za-z'.-]+){1,3}")


def plausible_full_name(name: str) -> bool:
    """A Han name (surname + 1-3 characters), a name joined by ·, or a Latin-letter name."""
    if _LATIN_NAME.fullmatch(name):
        return True
    if "·" in name:
        return 3 <= len(name) <= 20 and all(c == "·" or "\u4e00" <= c <= "\u9fff" for c in name)
    if not 2 <= len(name) <= 4 or not all("\u4e00" <= c <= "\u9fff" for c in name):
        return False
    surname = surname_of(name)
    return (surname in lexicon.COMPOUND_SURNAMES or surname in lexicon.SURNAMES) and len(
        name
    ) > len(surname)


def pseudonym_base(name: str) -> str:
    """Article 9: surname + 某; minority and transliterated names keep their first character."""
    if "·" in name:
        return name[0] + "某"
    if name[:1].isascii():
        return name[0].upper()
    return surname_of(name) + "某"


# ---------------------------------------------------------------- who is named

_ROLES_ALT: Final = _alternation(lexicon.PARTY_ROLES + lexicon.REPRESENTATIVE_ROLES)
_PARTY_LINE: Final = re.compile(
    rf"(?m)^[ \t\u3000]*(?P<role>{_ROLES_ALT})(?:\([^)\n]{{1,30}}\))*[ \t\u3000:]*"
    rf"(?P<name>[^,(:;\n]{{1,40}}?)[ \t\u3000]*(?=[,(;]|$)(?P<rest>[^\n]*)"
)
_NATURAL_MARKERS: Final = re.compile(r"^[,(]\s*[男女]\s*[,)]|出生|生于|公民身份号码|身份证|族,|住")
BODY_ROLES: Final = (
    "附带民事诉讼原告人",
    "被害人",
    "证人",
    "鉴定人",
    "法定代理人",
    "未成年人",
    "被监护人",
    "之子",
    "之女",
    "儿子",
    "女儿",
    "养子",
    "养女",
    "孙子",
    "孙女",
    "外孙",
    "外孙女",
    "其子",
    "其女",
    "婚生子",
    "婚生女",
    "非婚生子",
    "非婚生女",
    "育有一子",
    "育有一女",
    "育有二子",
    "育有二女",
    "生育一子",
    "生育一女",
    "长子",
    "次子",
    "长女",
    "次女",
)
#: Party-line roles that article 8(2)/(3) hides in every profile.
PROTECTED_PARTY_ROLES: Final = frozenset({"附带民事诉讼原告人", "法定代理人"})


def _read_name(text: str, start: int) -> tuple[int, int, bool] | None:
    """A name beginning at ``start``: (start, end, masked), or None when none is there."""
    pos = start
    while pos < len(text) and text[pos] in " \t\u3000:":
        pos += 1
    surname = text[pos : pos + 2] if text[pos : pos + 2] in _COMPOUND else ""
    if not surname:
        if pos >= len(text) or text[pos] not in lexicon.SURNAMES:
            return None
        surname = text[pos]
    end = pos + len(surname)
    masked_end = end
    while masked_end < len(text) and text[masked_end] in MASK_CLASS:
        masked_end += 1
    if masked_end > end:
        while masked_end < len(text) and (
            text[masked_end].isdigit() or text[masked_end] in "甲乙丙丁戊己庚辛"
        ):
            masked_end += 1
        return pos, masked_end, True
    given = 0
    while (
        given < 2
        and end + given < len(text)
        and "\u4e00" <= text[end + given] <= "\u9fff"
        and text[end + given] not in (lexicon.NAME_START_STOP if given == 0 else lexicon.NAME_STOP)
    ):
        given += 1
    if given == 0:
        return None
    return pos, end + given, False


def _party_people(ctx: Context) -> Iterator[Person]:
    for index, text in enumerate(ctx.texts):
        for match in _PARTY_LINE.finditer(text):
            role, name, rest = match.group("role"), match.group("name").strip(), match.group("rest")
            organisation = name.endswith(lexicon.ORGANISATION_ENDINGS) and len(name) > 3
            masked = is_masked_name(name)
            natural = not organisation and (
                bool(_NATURAL_MARKERS.search(rest)) or role in lexicon.REPRESENTATIVE_ROLES
            )
            if not organisation and not masked and not plausible_full_name(name):
                continue
            if role in ("委托诉讼代理人", "委托代理人", "辩护人", "指定代理人") and re.search(
                "律师|法律服务|法律工作者|执业证", rest
            ):
                continue  # lawyers are on the keep-list
            yield Person(
                role=role,
                name=name,
                masked=masked,
                part=index,
                start=match.start("name"),
                end=match.end("name"),
                natural=natural,
                line_text=match.group(0),
            )


def _body_people(ctx: Context, roles: tuple[str, ...] | list[str]) -> Iterator[Person]:
    pattern = re.compile(f"(?:{_alternation(roles)})")
    for index, text in enumerate(ctx.texts):
        for match in pattern.finditer(text):
            role = match.group()
            pos = match.end()
            while True:
                found = _read_name(text, pos)
                if found is None:
                    break
                start, end, masked = found
                name = text[start:end]
                if name not in ctx.keep_names:
                    yield Person(role, name, masked, index, start, end)
                if end < len(text) and text[end] == "、":
                    pos = end + 1
                    continue
                break


def _first_date(text: str, after: int = 0) -> date | None:
    for match in _DATE.finditer(text, after):
        tail = text[match.end() : match.end() + 3]
        if "出生" in tail or tail.startswith("生"):
            continue
        day = int(match.group(3) or 1)
        when = birth_date(f"{int(match.group(1)):04d}{int(match.group(2)):02d}{day:02d}")
        if when is not None:
            return when
    return None


def _age(born: date, when: date) -> int:
    return when.year - born.year - ((when.month, when.day) < (born.month, born.day))


def _birth_in(line: str) -> tuple[date, tuple[int, int]] | None:
    match = re.search(r"(\d{4})年(\d{1,2})月(\d{1,2})日(?:出生|生)", line)
    if match:
        born = birth_date(f"{match.group(1)}{int(match.group(2)):02d}{int(match.group(3)):02d}")
        if born:
            return born, match.span()
    return None


def prepare(ctx: Context) -> None:
    """What every check needs to know about the document: case type, cause, the people."""
    head = ctx.head()
    ctx.criminal = bool(re.search(r"刑事|\(\d{4}\)[^)\n]{0,12}刑", head))
    cause = re.search(rf"(?P<cause>[{CJK}、]{{2,30}}?纠纷)(?:一案|案)", head)
    if cause:
        ctx.cause = cause.group("cause")
    else:
        named = re.search(rf"案由[:为]?(?P<cause>[{CJK}、]{{2,30}})", head)
        ctx.cause = named.group("cause") if named else ""
    ctx.people = list(_party_people(ctx)) + list(_body_people(ctx, BODY_ROLES))
    if any(p.masked for p in ctx.people):  # only a hidden party can leak under its role word
        ctx.mentions = list(_body_people(ctx, lexicon.PARTY_ROLES))


def _family_case(ctx: Context) -> bool:
    return any(word in ctx.cause for word in lexicon.FAMILY_CAUSE_WORDS)


def _occurrences(ctx: Context, needle: str) -> Iterator[tuple[int, int, int]]:
    for index, text in enumerate(ctx.texts):
        start = text.find(needle)
        while start >= 0:
            yield index, start, start + len(needle)
            start = text.find(needle, start + len(needle))


def assign_pseudonyms(ctx: Context, names: list[str]) -> dict[str, str]:
    """Article 9 pseudonyms for ``names``, numbered where two people would share one."""
    taken: dict[str, set[str]] = {}
    for person in ctx.people:
        if person.masked:
            taken.setdefault(person.name.rstrip("0123456789甲乙丙丁"), set()).add(person.name)
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(pseudonym_base(name), []).append(name)
    result: dict[str, str] = {}
    for base, members in groups.items():
        existing = taken.get(base, set())
        if len(members) == 1 and not existing:
            result[members[0]] = base
            continue
        number = 1
        for name in members:
            while f"{base}{number}" in existing:
                number += 1
            result[name] = f"{base}{number}"
            number += 1
    return result


def _hide_everywhere(ctx: Context, people: list[Person], detail: str) -> Iterator[Hit]:
    names = sorted({p.name for p in people if not p.masked and p.name not in ctx.keep_names})
    for name in names:
        surname = surname_of(name)
        given = name[len(surname) :]
        for part, start, end in _occurrences(ctx, name):
            yield Hit(part, start, end, detail, name=name)
        if len(given) >= 2 and "·" not in name:
            for part, start, end in _occurrences(ctx, given):
                text = ctx.texts[part]
                if start >= len(surname) and text[start - len(surname) : start] == surname:
                    continue
                yield Hit(part, start, end, f"{detail}（名字单独出现）", replacement="某")


def protected_person_name(ctx: Context, match: DocumentMatch) -> Iterator[Hit]:
    people = [p for p in ctx.people if p.natural and not p.masked]
    if match.terms:
        people += [p for p in _body_people(ctx, match.terms) if not p.masked]
    protected = [
        p for p in people if p.role not in lexicon.PARTY_ROLES or p.role in PROTECTED_PARTY_ROLES
    ]
    protected = [
        p
        for p in protected
        if p.role
        not in ("委托诉讼代理人", "委托代理人", "辩护人", "诉讼代表人", "法定代表人", "负责人")
    ]
    if _family_case(ctx):
        protected += [
            p
            for p in people
            if p.role in lexicon.PARTY_ROLES or p.role in lexicon.REPRESENTATIVE_ROLES
        ]
    for person in people:
        born = _birth_in(person.line_text)
        if born and _age(born[0], ctx.today) < 18:
            protected.append(person)
    yield from _hide_everywhere(ctx, protected, "依法应隐名的人员以全名出现")


def party_name(ctx: Context, match: DocumentMatch) -> Iterator[Hit]:
    parties = [
        p
        for p in ctx.people
        if p.natural
        and not p.masked
        and (p.role in lexicon.PARTY_ROLES or p.role in lexicon.REPRESENTATIVE_ROLES)
    ]
    yield from _hide_everywhere(ctx, parties, "自然人当事人以全名出现")


_ORG_FORMS: Final = (
    "有限责任公司",
    "股份有限公司",
    "有限公司",
    "公司",
    "合作社",
    "厂",
    "店",
    "商行",
)


def company_trade_name(ctx: Context, match: DocumentMatch) -> Iterator[Hit]:
    for person in ctx.people:
        if person.natural or person.masked or "某" in person.name:
            continue
        name = person.name
        form = next((f for f in _ORG_FORMS if name.endswith(f)), None)
        if form is None or re.search("人民政府|委员会|人民法院|人民检察院|公安", name):
            continue
        region = re.match(rf"^[{CJK}]{{2,9}}?(?:省|自治区|市|自治州|县|区|旗)+", name)
        prefix = region.group() if region else ""
        replacement = f"{prefix}某{form}"
        for part, start, end in _occurrences(ctx, name):
            yield Hit(part, start, end, "单位字号未隐去", replacement=replacement)


def hidden_name_leak(ctx: Context, match: DocumentMatch) -> Iterator[Hit]:
    # The leaked name is replaced by the pseudonym the document already uses for that person.
    hidden = {(surname_of(p.name), p.role): p.name for p in ctx.people if p.masked}
    by_surname: dict[str, set[str]] = {}
    for (surname, _role), pseudonym in hidden.items():
        by_surname.setdefault(surname, set()).add(pseudonym)
    hidden_surnames = set(by_surname)
    leaked = {
        p.name: hidden[(surname_of(p.name), p.role)]
        for p in ctx.people + ctx.mentions
        if not p.masked
        and p.natural
        and p.name not in ctx.keep_names
        and (surname_of(p.name), p.role) in hidden
    }
    detail = "同一人在一处隐名、在另一处以全名出现"
    for full_name, pseudonym in leaked.items():
        for where, start, end in _occurrences(ctx, full_name):
            yield Hit(where, start, end, detail, replacement=pseudonym)
    metadata = ("filename", "properties", "comments", "deleted")
    main = ctx.main_text() if hidden_surnames else ""
    for index, part in enumerate(ctx.parts):
        if not part.name.startswith(metadata):
            continue
        text = ctx.texts[index]
        for surname in hidden_surnames:
            for found in re.finditer(re.escape(surname), text):
                name = _read_name(text, found.start())
                if name and not name[2] and name[1] - name[0] >= 2:
                    full = text[name[0] : name[1]]
                    # A word the running text also uses (张贴公告) is a word, not a leaked name.
                    if full not in ctx.keep_names and full not in main:
                        known = by_surname[surname]
                        yield Hit(
                            index,
                            name[0],
                            name[1],
                            "隐名当事人的全名出现在文件名、属性或批注中",
                            replacement=next(iter(known)) if len(known) == 1 else None,
                            name=None if len(known) == 1 else full,
                        )


def pseudonym_collision(ctx: Context, match: DocumentMatch) -> Iterator[Hit]:
    by_pseudonym: dict[str, list[Person]] = {}
    for person in ctx.people:
        if person.masked and not person.name[-1:].isdigit():
            by_pseudonym.setdefault(person.name, []).append(person)
    for name, people in by_pseudonym.items():
        party_lines = {p.line_text for p in people if p.line_text}
        roles = {p.role for p in people}
        if (
            len(party_lines) > 1
            or (party_lines and len(roles) > 1 and any(not p.line_text for p in people))
            or len({r for r in roles if r in lexicon.PARTY_ROLES}) > 1
        ):
            for person in people[1:]:
                yield Hit(
                    person.part,
                    person.start,
                    person.end,
                    f"两名不同人员均隐名为“{name}”，未按第九条编号区分",
                    replacement=None,
                )


# ------------------------------------------------------------ do not publish


def _term_hits(
    ctx: Context,
    terms: tuple[str, ...] | list[str],
    detail: str,
    whole: bool = False,
    parts: tuple[int, ...] | None = None,
) -> Iterator[Hit]:
    if not terms:
        return
    pattern = re.compile(_alternation(terms))
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
    "犯罪时不满十八周岁",
    "犯罪时未满十八周岁",
    "犯罪时已满十四周岁不满十八周岁",
    "犯罪时已满十六周岁不满十八周岁",
    "未成年被告人",
    "合适成年人",
    "犯罪记录封存",
)


def minor_defendant(ctx: Context, match: DocumentMatch) -> Iterator[Hit]:
    if not ctx.criminal:
        return
    yield from _term_hits(ctx, MINOR_TERMS + tuple(match.terms), "未成年人犯罪", whole=True)
    defendants = [p for p in ctx.people if p.role in ("被告人", "罪犯", "上诉人", "原审被告人")]
    last_party = max((p.start for p in ctx.people if p.part == 0 and p.line_text), default=0)
    offence = _first_offence_date(ctx.main_text(), last_party) if ctx.texts else None
    if offence is None:
        return
    for person in defendants:
        born = _birth_in(person.line_text)
        if born and _age(born[0], offence) < 18:
            line_start = person.start - person.line_text.find(person.name)
            start = max(0, line_start + born[1][0])
            yield Hit(
                person.part,
                start,
                start + born[1][1] - born[1][0],
                f"被告人犯罪时未满十八周岁（{_age(born[0], offence)}周岁）",
                whole_document=True,
            )


def _first_offence_date(text: str, after: int) -> date | None:
    """The first date in the facts the court found (else in the charge), not a birth date."""
    found = re.search(r"查明", text[after:]) or re.search(r"指控", text[after:])
    start = after + (found.end() if found else 0)
    pattern = r"(\d{4})年(\d{1,2})月(?:(\d{1,2})日)?(?!出生|生)"
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
    title = re.search(_spaced("调解书"), spaced)
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


# ------------------------------------------------------------ identifiers


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
        for found in _candidates(text, pattern, context, window):
            if accept is not None and not accept(found.group()):
                continue
            if ctx.claim(index, *found.span()):
                yield Hit(index, *found.span(), detail, replacement=REDACTED)


@functools.lru_cache(maxsize=64)
def _words(words: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(_alternation(words))


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
        for found in _ID18.finditer(text):
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
        for found in _MOBILE.finditer(text):
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
        for found in _LANDLINE.finditer(text):
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
        for found in _CARD.finditer(text):
            digits = re.sub(r"\D", "", found.group())
            before = _before(text, found.start(), match.window)
            if not bank_card(digits):
                continue
            if _has(before, lexicon.NOT_PERSONAL_NUMBER_CONTEXT) and not _has(before, context):
                continue
            if ctx.claim(index, *found.span()):
                yield Hit(index, *found.span(), "银行卡号", replacement=REDACTED)
        for found in _ACCOUNT.finditer(text):
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
        for found in _VIN.finditer(text):
            value = found.group()
            if value.isdigit() or not any(c.isdigit() for c in value):
                continue
            if vin_check(value) and ctx.claim(index, *found.span()):
                yield Hit(index, *found.span(), "车辆识别代号（VIN）", replacement=REDACTED)
        for found in re.finditer(NO_ALNUM_BEFORE + r"\d{15}" + NO_ALNUM_AFTER, text):
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
        for found in _USCC.finditer(text):
            value = found.group()
            if value.startswith("92") or not uscc(value):
                continue
            if _has(_before(text, found.start(), match.window), context):
                continue
            if ctx.claim(index, *found.span()):
                yield Hit(index, *found.span(), "单位统一社会信用代码", replacement=REDACTED)
        for found in _ORG.finditer(text):
            if organisation_code_valid(found.group()) and ctx.claim(index, *found.span()):
                yield Hit(index, *found.span(), "组织机构代码", replacement=REDACTED)


_ADDRESS_TRIGGER: Final = re.compile(
    r"(?:家庭住址|家庭住所|现住址|户籍所在地|户籍地|户籍住址|经常居住地|居住地|住址|住所地|现住|暂住|住)"
    r"(?:于|在|为|:)?"
)
_COUNTY_ONLY: Final = re.compile(r"[\u4e00-\u9fff]{1,8}[县区旗市]")


def _first_town_marker(segment: str) -> int:
    """Where the part below the county starts; 楼 counts only after a digit (鼓楼区 is a county)."""
    positions = [segment.find(m) for m in lexicon.TOWN_MARKERS if m != "楼"]
    positions += [m.start() for m in re.finditer(r"(?<=\d)楼", segment)]
    return min((p for p in positions if p > 0), default=-1)


_ADDRESS_END: Final = re.compile(r"[,;。\n(]")


def address(ctx: Context, match: DocumentMatch) -> Iterator[Hit]:
    for index, text in enumerate(ctx.texts):
        for found in _ADDRESS_TRIGGER.finditer(text):
            trigger = found.group()
            after = text[found.end() : found.end() + 2]
            if (
                trigger.startswith("住")
                and trigger in ("住", "住于", "住在")
                and (
                    after[:1] in "院宿房处所"
                    or not after[:1]
                    or not "\u4e00" <= after[0] <= "\u9fff"
                )
            ):
                continue
            line_start = text.rfind("\n", 0, found.start()) + 1
            line = text[line_start : found.start()]
            if trigger.startswith("住所地") and not re.search(r"[男女]|出生", line):
                continue  # an organisation's domicile is published (art. 11)
            stop = _ADDRESS_END.search(text, found.end())
            end = stop.start() if stop else len(text)
            segment = text[found.end() : end]
            if not segment or len(segment) > 60:
                continue
            town = _first_town_marker(segment)
            if town < 0:
                continue
            county = max(segment.rfind(c, 0, town) for c in "县区旗市")
            tail_start = county + 1 if county >= 0 else 0
            tail = segment[tail_start:]
            if (
                not tail
                or _COUNTY_ONLY.fullmatch(tail)
                or (
                    re.fullmatch(r"[×*Xx某\d号室幢栋单元楼层组村镇乡路街]*", tail)
                    and is_masked(tail)
                )
            ):
                continue
            if is_masked(tail) and not re.search(r"\d", tail.replace("×", "")):
                continue
            start = found.end() + tail_start
            if ctx.claim(index, start, end):
                yield Hit(index, start, end, "县级以下住址", replacement="××")


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


def health(ctx: Context, match: DocumentMatch) -> Iterator[Hit]:
    yield from _term_hits(ctx, _HEALTH_TERMS + tuple(match.terms), "健康状况信息")


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
    yield from _term_hits(ctx, terms, "可能涉及商业秘密")


CHECKS: Final[dict[str, Check]] = {
    "minor_defendant": minor_defendant,
    "mediation": mediation,
    "family_cause": family_cause,
    "family_related_cause": family_related_cause,
    "state_secret": state_secret,
    "non_public_hearing": non_public_hearing,
    "protected_person_name": protected_person_name,
    "party_name": party_name,
    "company_trade_name": company_trade_name,
    "hidden_name_leak": hidden_name_leak,
    "pseudonym_collision": pseudonym_collision,
    "resident_id": resident_id,
    "legacy_id": legacy_id,
    "residence_permit": residence_permit,
    "travel_document": travel_document,
    "mobile_phone": mobile_phone,
    "landline_phone": landline_phone,
    "bank_account": bank_account,
    "licence_plate": licence_plate,
    "property_certificate": property_certificate,
    "vehicle_identifier": vehicle_identifier,
    "email": email,
    "messaging_account": messaging_account,
    "individual_business_code": individual_business_code,
    "organisation_code": organisation_code,
    "address": address,
    "health": health,
    "technical_investigation": technical_investigation,
    "private_matters": private_matters,
    "trade_secret": trade_secret,
}
