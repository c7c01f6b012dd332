"""What every check shares: the document as the checks see it, what they report, pattern pieces.

``Context`` holds one document's parts, normalised, and what is learnt about
it before and while the checks run: the keep-list, the spans already claimed
by an identifier, the people named, the case's cause. A check reads it and
yields ``Hit``s in normalised offsets; the scanner maps them back to the text
as extracted. The pattern pieces below are the ones more than one kind of
check uses.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import Final

from agent.detectors.documents.checker.normalize import Normalized
from agent.detectors.documents.checker.validators import birth_date


@dataclass(frozen=True)
class Part:
    """One piece of extracted text; offsets in findings index into ``text``."""

    name: str
    text: str


@dataclass(slots=True)
class Hit:
    """What a check reports: a span of normalised text in one part. Not frozen: a dense
    judgment makes hundreds, and a frozen dataclass costs twice as much to build."""

    part: int
    start: int
    end: int
    detail: str
    action: str | None = None  # overrides the rule's action (a failed checksum becomes review)
    replacement: str | None = None  # what ``--fix`` writes instead of the span
    whole_document: bool = False  # a do-not-publish ground: no replacement, no masking
    name: str | None = None  # the full name the span hides; its pseudonym is decided per document


@dataclass
class Person:
    """Someone named in the document, as found by a role word."""

    role: str
    name: str  # as normalised
    masked: bool
    part: int
    start: int
    end: int
    natural: bool = True
    #: The clause that declares the person (被告人张三，男，…出生，…), empty for a mention.
    line_text: str = ""
    line_start: int = -1  # where ``line_text`` starts in the part's normalised text


@dataclass
class Context:
    """One document, normalised, with what the checks learn about it on the way."""

    parts: Sequence[Part]
    norm: list[Normalized]
    profile: str
    today: date
    keep: list[list[tuple[int, int]]] = field(default_factory=list)
    keep_mask: list[bytearray] = field(default_factory=list)
    claimed: list[bytearray] = field(default_factory=list)
    people: list[Person] = field(default_factory=list)
    #: Names after party role words in running text and in the case title (指控被告人张三犯…,
    #: 原告赵甲与被告钱乙…纠纷一案): parties, but not where they are declared.
    mentions: list[Person] = field(default_factory=list)
    keep_names: set[str] = field(default_factory=set)
    occurrences: dict[str, list[tuple[int, int, int]]] = field(default_factory=dict)
    #: Per part, the runs of characters an identifier can be made of (``identifiers``).
    identifier_runs: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    cause: str = ""
    criminal: bool = False

    @cached_property
    def texts(self) -> list[str]:
        return [n.text for n in self.norm]

    def main_parts(self) -> list[int]:
        """The running text in reading order: the body, or the pages of a PDF or OFD."""
        indices = [i for i, p in enumerate(self.parts) if p.name == "body"]
        indices += [i for i, p in enumerate(self.parts) if p.name.startswith("page:")]
        return indices or ([0] if self.parts else [])

    def head(self, limit: int = 3000) -> str:
        """The opening of the main text (title, case number, parties, cause), across pages."""
        return self.main_text()[:limit]

    def main_text(self) -> str:
        return self._main_text

    @cached_property
    def _main_text(self) -> str:
        # Several checks read it; the parts do not change once normalised.
        return "\n".join(self.norm[i].text for i in self.main_parts())

    def locate(self, offset: int) -> tuple[int, int]:
        """A position in ``main_text()`` as (part index, offset in that part)."""
        for index in self.main_parts():
            length = len(self.norm[index].text)
            if offset <= length:
                return index, offset
            offset -= length + 1
        last = self.main_parts()[-1]
        return last, len(self.norm[last].text)

    def claim(self, part: int, start: int, end: int) -> bool:
        """Reserve a span for one identifier; False when another identifier already took it."""
        taken = self.claimed[part]
        if 1 in taken[start:end]:
            return False
        taken[start:end] = b"\x01" * (end - start)
        return True

    def kept(self, part: int, start: int, end: int) -> bool:
        return 1 in self.keep_mask[part][start:end]


CJK: Final = "\u4e00-\u9fff"


def alternation(words: tuple[str, ...] | list[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))


def spaced_pattern(word: str) -> str:
    """Judges' titles are often typeset with spaces between characters (审 判 长)."""
    return r"[ \t\u3000]*".join(re.escape(c) for c in word)


def age_at(born: date, when: date) -> int:
    return when.year - born.year - ((when.month, when.day) < (born.month, born.day))


_BIRTH: Final = re.compile(
    r"(?P<year>\d{4})年(?:(?P<month>\d{1,2})月(?:(?P<day>\d{1,2})日)?)?(?:出生|生(?![^,。;]{0,3}[罪案]))"
    r"|生于(?P<year2>\d{4})年(?:(?P<month2>\d{1,2})月(?:(?P<day2>\d{1,2})日)?)?"
)


def birth_in(line: str) -> tuple[date, tuple[int, int]] | None:
    """A date of birth in a party's clause: 年月日, 年月 or 年 出生, 生于…; a date given
    only to the month or year counts as its last day (the youngest the person can be)."""
    match = _BIRTH.search(line)
    if not match:
        return None
    year = match.group("year") or match.group("year2")
    month = match.group("month") or match.group("month2")
    day = match.group("day") or match.group("day2")
    born = birth_date(f"{year}{int(month or 12):02d}{int(day or 28):02d}")
    return (born, match.span()) if born else None


_NUMERALS: Final = {c: i for i, c in enumerate("零一二三四五六七八九")}


def chinese_number(text: str) -> int | None:
    """十六 -> 16, 二十 -> 20, 17 -> 17; None for anything else."""
    if text.isdigit():
        return int(text)
    if "十" in text:
        tens, _, units = text.partition("十")
        value = (_NUMERALS.get(tens, -100) if tens else 1) * 10
        value += _NUMERALS.get(units, -100) if units else 0
        return value if value >= 0 else None
    return _NUMERALS.get(text) if len(text) == 1 else None
