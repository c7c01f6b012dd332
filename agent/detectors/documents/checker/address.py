"""The address check: a natural person's address below the county, after the words that name it.

An organisation's domicile is published as it is; so are a county-level
address and one already masked (××路××号).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

from agent.detectors.documents.checker import lexicon
from agent.detectors.documents.checker.context import Context, Hit, alternation
from agent.detectors.documents.checker.normalize import is_masked
from agent.detectors.documents.policy import DocumentMatch

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


#: An address ends at a comma or full stop, or where the next party's role word starts
#: (a single-line document runs 住北京市朝阳区…被告钱某…).
_ADDRESS_END: Final = re.compile(
    rf"[,;。\n(]|{alternation(lexicon.PARTY_ROLES + lexicon.REPRESENTATIVE_ROLES)}"
    r"|因涉嫌|因犯|于\d{4}年"
)
#: 住 as part of another word: 所住小区, 商住楼, 居住, 入住, 留住, 抓住, 记住.
_NOT_DOMICILE_BEFORE: Final = frozenset("所商居入留借租同常保记抓站挡忍顶围止卡稳拦压按揪拽困包")


def address(ctx: Context, match: DocumentMatch) -> Iterator[Hit]:
    for index, text in enumerate(ctx.texts):
        for found in _ADDRESS_TRIGGER.finditer(text):
            trigger = found.group()
            after = text[found.end() : found.end() + 2]
            if (
                trigger.startswith("住")
                and trigger in ("住", "住于", "住在")
                and (
                    after[:1] in "院宿房处所宅户楼"
                    or not after[:1]
                    or not "\u4e00" <= after[0] <= "\u9fff"
                    or text[found.start() - 1 : found.start()] in _NOT_DOMICILE_BEFORE
                )
            ):
                continue
            line_start = text.rfind("。", 0, found.start()) + 1
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
