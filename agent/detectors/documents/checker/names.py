"""Checks about who is named: parties, protected people, companies, pseudonyms (articles 8, 9).

People are found by role words: party lines (原告张三，男，…) and role words in
running text (被害人李四). ``keep_role_names`` finds the judges, clerks and
prosecutors whose names stay published. A name to hide is hidden everywhere
it appears, and ``assign_pseudonyms`` decides one pseudonym per person for
the whole document.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Final

from agent.detectors.documents.checker import lexicon
from agent.detectors.documents.checker.context import (
    CJK,
    Context,
    Hit,
    Person,
    age_at,
    alternation,
    birth_in,
    spaced_pattern,
)
from agent.detectors.documents.checker.reader import declared_name_end, read_name
from agent.detectors.documents.policy import DocumentMatch

_MASKED_NAME: Final = re.compile(
    rf"^[{CJK}]{{1,2}}(?:[某×*]+|[Xx]{{2,}})[甲乙丙丁戊己庚辛壬癸\d]*$|^某[甲乙丙丁\d]+$"
)


_KEEP_TITLES: Final = "|".join(
    spaced_pattern(r) for r in sorted(lexicon.KEEP_ROLES, key=len, reverse=True)
)
#: A judge's, clerk's or prosecutor's name after the title, wherever it stands: the
#: signature block of a single-line document runs 审判长余海峰审判员段文静二〇二五年….
_KEEP_ROLE_NAME: Final = re.compile(
    rf"(?:{_KEEP_TITLES})[ \t:]*(?P<name>[{CJK}][ \t]+[{CJK}]|[{CJK}·]{{2,12}}?)"
    rf"(?=[ \t]*(?:{_KEEP_TITLES})|[ \t]*(?:二〇|二零|〇|\d)|[,、。;:)\s]|出庭|到庭|担任|记录|$)"
)
#: A lawyer or legal worker: name, firm, licence number stay published.
_LAWYER: Final = re.compile(
    r"(?:委托诉讼代理人|委托代理人|诉讼代理人|指定辩护人|辩护人)[ \t:]*"
    rf"(?P<name>[{CJK}·]{{2,8}}?|[A-Z][A-Za-z .'-]{{1,40}}?),"
    r"[^。;]{0,40}?(?:律师|法律工作者|法律服务所|法律援助)"
    r"(?:[^。;]{0,12}?执业证号?[ :]*[0-9A-Za-z]{6,20})?"
)


def keep_role_names(text: str) -> Iterator[tuple[int, int, str]]:
    """Judges, assessors, assistants, clerks, prosecutors and lawyers: names that stay published."""
    for match in _KEEP_ROLE_NAME.finditer(text):
        name = re.sub(r"\s+", "", match.group("name"))
        if 2 <= len(name) <= 12:
            yield match.start("name"), match.end("name"), name
    for match in _LAWYER.finditer(text):
        yield match.start(), match.end(), match.group("name").strip()


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


_PARTY_AND_REPRESENTATIVE: Final = lexicon.PARTY_ROLES + lexicon.REPRESENTATIVE_ROLES
_ROLE_WORD: Final = re.compile(
    rf"(?:{alternation(_PARTY_AND_REPRESENTATIVE)})(?:\([^)]{{1,30}}\))*"
)
_NATURAL_MARKERS: Final = re.compile(
    r"^[,(]\s*[男女]\s*[,)。]|出生|生于|公民身份号码|身份证|族,|[,(]住|现住|户籍|周岁|岁,"
)
_ORGANISATION_DELIMITER: Final = re.compile(r"[,;。、与和(]")
_ORGANISATION_TEXT: Final = re.compile(rf"[{CJK}()]+")


def _organisation_end(text: str, start: int) -> int:
    """The end of an organisation's name at ``start`` (北京某某有限公司, 苏州市公安局姑苏分局):
    the first delimiter within 42 characters that follows an organisation ending; -1 if none."""
    limit = min(len(text), start + 42)
    for delimiter in _ORGANISATION_DELIMITER.finditer(text, start + 2, limit):
        end = delimiter.start()
        if text.endswith(lexicon.ORGANISATION_ENDINGS, start, end):
            return end if _ORGANISATION_TEXT.fullmatch(text, start, end) else -1
    if limit == len(text) and text.endswith(lexicon.ORGANISATION_ENDINGS, start, limit):
        return limit if _ORGANISATION_TEXT.fullmatch(text, start, limit) else -1
    return -1


_ORGANISATION_MARKERS: Final = re.compile(r"住所地|法定代表人|负责人|统一社会信用代码|组织机构代码")
_LAWYER_WORDS: Final = re.compile("律师|法律服务|法律工作者|执业证|法律援助")
_AGENT_ROLES: Final = frozenset(
    {"委托诉讼代理人", "委托代理人", "辩护人", "指定代理人", "诉讼代理人"}
)
#: A case title: 张某、李某敲诈勒索罪一审刑事判决书, 赵甲与钱乙买卖合同纠纷二审民事判决书.
_CAPTION_TAIL: Final = re.compile(
    rf"[{CJK}、]{{0,30}}?(?:罪|纠纷|案)[{CJK}]{{0,6}}?"
    r"(?:[一二]审|再审|执行|复议)?(?:刑事|民事|行政)?(?:附带民事)?(?:判决书|裁定书|决定书|调解书)"
)
_NAME_JOINERS: Final = "、与和及"
#: Body roles that name someone by their part in the case.
CASE_ROLES: Final = (
    "附带民事诉讼原告人",
    "被害人",
    "证人",
    "鉴定人",
    "法定代理人",
    "未成年人",
    "被监护人",
)
#: Body roles that name someone through a relation rather than a part in the case.
KINSHIP: Final = (
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
    # Relatives named in the facts (其妻子房某某, 其堂妹綦某某) are victims or witnesses.
    "妻子",
    "丈夫",
    "之妻",
    "之夫",
    "其妻",
    "其夫",
    "前妻",
    "前夫",
    "父亲",
    "母亲",
    "其父",
    "其母",
    "哥哥",
    "弟弟",
    "姐姐",
    "妹妹",
    "堂兄",
    "堂弟",
    "堂姐",
    "堂妹",
    "表兄",
    "表弟",
    "表姐",
    "表妹",
    "侄子",
    "侄女",
    "外甥",
    "外甥女",
)
BODY_ROLES: Final = CASE_ROLES + KINSHIP
KINSHIP_ROLES: Final = frozenset(KINSHIP)
#: A party's other names, hidden like the name itself: 綦某某（曾用名綦某）.
_ALIAS: Final = re.compile(r"\((?:曾用名|又名|别名|化名|原名)[ :]*")
#: Party-line roles that article 8(2)/(3) hides in every profile.
PROTECTED_PARTY_ROLES: Final = frozenset({"附带民事诉讼原告人", "法定代理人"})


def _read_name(text: str, start: int) -> tuple[int, int, bool] | None:
    return read_name(text, start)


def _clause_end(text: str, start: int, roles: re.Pattern[str]) -> int:
    """Where the clause describing a party ends: the full stop, or the next party's role word."""
    stop = text.find("。", start, start + 200)
    limit = stop if stop >= 0 else min(len(text), start + 200)
    following = roles.search(text, start, limit)
    return following.start() if following else limit


def _names_after(
    text: str, start: int, first: tuple[int, int, bool] | None = None
) -> Iterator[tuple[int, int, bool]]:
    """A name at ``start`` (``first`` when already read) and the names joined to it by 、
    (被告人何某、韦春生、蒙小军)."""
    pos = start
    found = first or read_name(text, pos)
    while True:
        if found is None:
            return
        yield found
        end = found[1]
        if end < len(text) and text[end] == "、" and not _ROLE_WORD.match(text, end + 1):
            pos = end + 1
            found = read_name(text, pos)
            continue
        return


def party_people(ctx: Context) -> Iterator[Person]:
    """Parties and representatives after their role word, wherever it stands in the text.

    A role word followed by a name and ``，男``/birth/ID/domicile wording in the same
    clause declares a natural person (``line_text`` is that clause); followed by an
    organisation's name and its domicile or representative, an organisation. Any other
    role word before a name (指控被告人张三犯…, 原告赵甲与被告钱乙…纠纷一案, lists joined by
    、) is a mention: ``line_text`` is empty.
    """
    for index, text in enumerate(ctx.texts):
        for match in _ROLE_WORD.finditer(text):
            role = match.group().split("(", 1)[0]
            pos = match.end()
            while pos < len(text) and text[pos] in " \t:":
                pos += 1
            person = read_name(text, pos)
            after = text[person[1] : person[1] + 1] if person else ""
            # A name followed by a comma or a verb is a person; only otherwise can it be the
            # start of an organisation's name (张家港某某公司 reads 张家港 first).
            maybe_organisation = person is None or (
                after and after not in ",、(;。" and after not in lexicon.NAME_STOP
            )
            org_end = _organisation_end(text, pos) if maybe_organisation else -1
            if org_end > 0 and not text.startswith(("某", "其"), pos):
                name, end = text[pos:org_end], org_end
                clause = text[end : _clause_end(text, end, _ROLE_WORD)]
                declared = text[end : end + 1] == "," and bool(_ORGANISATION_MARKERS.search(clause))
                if declared:
                    yield Person(
                        role,
                        name,
                        is_masked_name(name) or "某" in name,
                        index,
                        pos,
                        end,
                        natural=False,
                        line_text=text[match.start() : end] + clause,
                        line_start=match.start(),
                    )
                    continue
                if person is None:
                    continue  # an organisation named again: its declaration is what counts
            for start, end, masked in _party_names(text, pos, person):
                name = text[start:end]
                if name in ctx.keep_names:
                    continue
                declared = False
                clause_end = end
                if text[end : end + 1] in (",", "("):  # only a declaration has a clause
                    clause_end = _clause_end(text, end, _ROLE_WORD)
                    clause = text[end:clause_end]
                    if role in _AGENT_ROLES and _LAWYER_WORDS.search(clause):
                        continue  # lawyers are on the keep-list
                    declared = bool(_NATURAL_MARKERS.search(clause))
                alias = _ALIAS.match(text, end)
                if alias:
                    other = read_name(text, alias.end())
                    if other:
                        yield Person(role, text[other[0] : other[1]], other[2], index, *other[:2])
                yield Person(
                    role=role,
                    name=name,
                    masked=masked or is_masked_name(name),
                    part=index,
                    start=start,
                    end=end,
                    natural=True,
                    line_text=text[match.start() : clause_end] if declared else "",
                    line_start=match.start() if declared else -1,
                )


def _party_names(
    text: str, pos: int, first: tuple[int, int, bool] | None
) -> Iterator[tuple[int, int, bool]]:
    if first is None:
        unknown_surname = declared_name_end(text, pos)
        if unknown_surname > 0:
            yield pos, unknown_surname, False
        return
    yield from _names_after(text, pos, first)


def caption_people(ctx: Context) -> Iterator[Person]:
    """Parties named in a case title before any role word (张某、李某敲诈勒索罪一审刑事判决书)."""
    role = "被告人" if ctx.criminal else "当事人"
    for index in ctx.main_parts()[:1]:
        text = ctx.texts[index]
        starts = [0] + [m.end() for m in re.finditer(r"人民法院|[。\s]", text[:400])]
        for start in starts:
            names: list[tuple[int, int, bool]] = []
            pos = start
            while True:
                found = read_name(text, pos)
                if found is None:
                    break
                names.append(found)
                pos = found[1]
                if pos < len(text) and text[pos] in _NAME_JOINERS:
                    pos += 1
                    continue
                break
            if names and _CAPTION_TAIL.match(text, names[-1][1]):
                for begin, end, masked in names:
                    yield Person(role, text[begin:end], masked, index, begin, end)


@lru_cache(maxsize=16)
def _role_pattern(roles: tuple[str, ...]) -> re.Pattern[str]:
    # Plain literals only: a look-around in one alternative makes re try every branch at
    # every character, several times slower on a long judgment.
    return re.compile(alternation(roles))


def body_people(ctx: Context, roles: tuple[str, ...] | list[str]) -> Iterator[Person]:
    pattern = _role_pattern(tuple(roles))
    for index, text in enumerate(ctx.texts):
        for match in pattern.finditer(text):
            role, end = match.group(), match.end()
            if role == "证人" and text[match.start() - 1 : match.start()] in ("保", "见", "公"):
                continue  # 保证人, 见证人, 公证人 are no witnesses
            first = read_name(text, end)
            if first is None and end < len(text) and role[1:] + text[end] in roles:
                end += 1  # 其妻子房某某: the longer role word 妻子
                first = read_name(text, end)
            for start, stop, masked in _names_after(text, end, first):
                name = text[start:stop]
                if name not in ctx.keep_names:
                    yield Person(role, name, masked, index, start, stop)


def _family_case(ctx: Context) -> bool:
    return any(word in ctx.cause for word in lexicon.FAMILY_CAUSE_WORDS)


def _occurrences(ctx: Context, needle: str) -> list[tuple[int, int, int]]:
    """Every (part, start, end) of ``needle``; several rules ask for the same names."""
    found = ctx.occurrences.get(needle)
    if found is None:
        found = []
        for index, text in enumerate(ctx.texts):
            start = text.find(needle)
            while start >= 0:
                found.append((index, start, start + len(needle)))
                start = text.find(needle, start + len(needle))
        ctx.occurrences[needle] = found
    return found


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
    people = [p for p in ctx.people + ctx.mentions if p.natural and not p.masked]
    if match.terms:
        people += [p for p in body_people(ctx, match.terms) if not p.masked]
    protected = [
        p for p in people if p.role not in lexicon.PARTY_ROLES or p.role in PROTECTED_PARTY_ROLES
    ]
    protected = [
        p
        for p in protected
        if p.role
        not in ("委托诉讼代理人", "委托代理人", "辩护人", "诉讼代表人", "法定代表人", "负责人")
    ]
    # A party named again through a relative (案发后其父褚某某报警, the defendant) stays a party.
    parties = {
        p.name
        for p in people
        if p.role in lexicon.PARTY_ROLES and p.role not in PROTECTED_PARTY_ROLES
    }
    protected = [p for p in protected if not (p.role in KINSHIP_ROLES and p.name in parties)]
    if _family_case(ctx):
        protected += [
            p
            for p in people
            if p.role in lexicon.PARTY_ROLES or p.role in lexicon.REPRESENTATIVE_ROLES
        ]
    for person in people:
        born = birth_in(person.line_text)
        if born and age_at(born[0], ctx.today) < 18:
            protected.append(person)
    yield from _hide_everywhere(ctx, protected, "依法应隐名的人员以全名出现")


def party_name(ctx: Context, match: DocumentMatch) -> Iterator[Hit]:
    parties = [
        p
        for p in ctx.people + ctx.mentions
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
