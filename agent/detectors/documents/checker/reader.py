"""Reading a Chinese name where it stands: where it starts, where it ends.

A name after a role word is a surname (single or compound, ``lexicon``) and
one or two given-name characters, a minority or transliterated name joined by
``·``, or a name already masked (张某, 王××, 李某1). Where the given name ends
is the hard part in running text with no spaces: 被害人曹建谈恋爱 is 曹建
followed by 谈恋爱. Two things decide it:

- characters that never continue a given name (particles, the verbs a
  judgment puts right after a name: ``lexicon.NAME_STOP``);
- a word list: when a common word starts at the would-be last character of
  the name (谈恋爱, 个人, 发生) and it is more common than the word that would
  start one character later, the name ends before it.

The word list (``data/words.txt``) is the two- and three-character words of
jieba's dictionary with their frequencies (scripts/build_name_words.py); it is
read the first time a name needs it, in about 15 ms, instead of importing a
segmenter (jieba takes seconds to load its dictionary; docs/documents.md).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Final

from agent.detectors.documents.checker import lexicon

CJK: Final = "\u4e00-\u9fff"
MASK_CLASS: Final = "某×*Xx"
_NUMBERING: Final = "甲乙丙丁戊己庚辛壬癸0123456789"
_COMPOUND: Final = frozenset(lexicon.COMPOUND_SURNAMES)
_WORDS_FILE: Final = Path(__file__).with_name("data") / "words.txt"
#: Words that follow a role word and start with a surname-like character, but are no name.
NOT_NAME_WORDS: Final = frozenset(
    [
        "陈述",
        "陈诉",
        "证言",
        "证实",
        "供述",
        "辩解",
        "家属",
        "亲属",
        "方面",
        "单位",
        "本人",
        "于是",
        "和解",
        "安全",
        "文化",
        "时间",
        "万元",
        "元整",
        "宁愿",
        "童年",
        "向其",
        "于某日",
        "全部",
        "全家",
        "连续",
        "成年",
        "高度",
        "明知",
        "明显",
        "应当",
        "曾经",
        "支付",
        "付款",
        "付清",
        "房屋",
        "房产",
        "车辆",
        "陆续",
        "朱砂",
        "金额",
        "金钱",
        "钱款",
        "利息",
        "利用",
        "路过",
        "路上",
        "项目",
    ]
)
#: Surnames that are also common function words (原告方提交, 被害人向公安机关报案, 被告于本
#: 判决生效之日起): read as a surname only when the name stands alone (被告于某，男；…、于某、).
_FUNCTION_SURNAMES: Final = frozenset("将对和同从及也又还经为由自把让给时应都但")
#: Common surnames that are also function words (于文华, 曾怡瑞; 于本判决, 曾多次, 向公安):
#: a surname unless a common word or a pronoun-like character follows.
_COMMON_FUNCTION_SURNAMES: Final = frozenset("于向方曾")
_NOT_GIVEN_AFTER_FUNCTION: Final = frozenset("本其此该上下次后前当同多先再已仍将被在")
#: What ends a transliterated segment (买买提持刀): particles and the verbs after a name.
_SEGMENT_STOP: Final = frozenset("的与和及在于系是犯持驾将对向被等称证供到因为已也均即又不未之其")
#: A "name" followed by these is a place or a masked organisation (苏州市…, 石家庄某某公司).
_NOT_AFTER_NAME: Final = frozenset("市省县区镇乡村州盟旗路街")
_DOTS: Final = "·•・"
_MINORITY_NAME: Final = re.compile(rf"[{CJK}]{{1,6}}(?:[·•・][{CJK}]{{1,8}})+")
_LATIN_NAME: Final = re.compile(r"[A-Z][A-Za-z'.-]+(?: [A-Z][A-Za-z'.-]+){1,3}")


@cache
def words() -> dict[str, int]:
    """Common two- and three-character words and their frequencies (loaded once)."""
    table: dict[str, int] = {}
    for line in _WORDS_FILE.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            word, _, frequency = line.partition(" ")
            table[word] = int(frequency)
    return table


def word_at(text: str, position: int) -> tuple[str, int]:
    """The longest common word starting at ``position`` (three characters, then two)."""
    table = words()
    for length in (3, 2):
        candidate = text[position : position + length]
        if len(candidate) == length and candidate in table:
            return candidate, table[candidate]
    return "", 0


def _is_cjk(char: str) -> bool:
    return "\u4e00" <= char <= "\u9fff"


def _ends_before(text: str, position: int) -> bool:
    """True when a word starting at ``position`` makes the name end just before it."""
    word, frequency = word_at(text, position)
    if not word:
        return False
    if len(word) == 3:
        return True
    _next_word, next_frequency = word_at(text, position + 1)
    return frequency >= next_frequency


def _segment_end(text: str, start: int, limit: int) -> int:
    """The end of one transliterated segment (买买提 in 买买提持刀): stop characters and words."""
    end = start
    while end < len(text) and end - start < limit and _is_cjk(text[end]):
        if end > start and (text[end] in _SEGMENT_STOP or _ends_before(text, end)):
            break
        end += 1
    return end


def read_name(text: str, start: int) -> tuple[int, int, bool] | None:
    """A name beginning at ``start`` (after spaces and a colon): (start, end, masked)."""
    pos = start
    while pos < len(text) and text[pos] in " \t:":
        pos += 1
    if pos >= len(text) or not _is_cjk(text[pos]):
        latin = _LATIN_NAME.match(text, pos)
        return (pos, latin.end(), False) if latin else None
    window = text[pos + 1 : pos + 8]
    if "·" in window or "•" in window or "・" in window:
        minority = _MINORITY_NAME.match(text, pos)
        if minority:
            last_dot = max(text.rfind(dot, pos, minority.end()) for dot in _DOTS)
            return pos, _segment_end(text, last_dot + 1, 8), False
    two = text[pos : pos + 2]
    surname = two if two in _COMPOUND else ""
    if not surname:
        if text[pos] not in lexicon.SURNAMES:
            return None
        surname = text[pos]
    if two in NOT_NAME_WORDS or text[pos : pos + 3] in NOT_NAME_WORDS:
        return None
    end = pos + len(surname)
    masked_end = end
    while masked_end < len(text) and text[masked_end] in MASK_CLASS:
        masked_end += 1
    if masked_end > end:
        while masked_end < len(text) and text[masked_end] in _NUMBERING:
            masked_end += 1
        return pos, masked_end, True
    if end >= len(text):
        return None
    first = text[end]
    if not _is_cjk(first) or first in lexicon.NAME_START_STOP:
        return None
    function_surname = len(surname) == 1 and surname in _FUNCTION_SURNAMES
    if surname in _COMMON_FUNCTION_SURNAMES and (
        first in _NOT_GIVEN_AFTER_FUNCTION or word_at(text, end)[1] >= 300
    ):
        return None
    if not function_surname and len(surname) == 1 and word_at(text, pos)[1] >= 2000:
        return None  # 高度, 文化: a common word, not a surname and a given name
    end += 1
    if (
        end < len(text)
        and _is_cjk(text[end])
        and text[end] not in lexicon.NAME_STOP
        and text[end] not in MASK_CLASS
        and not _ends_before(text, end)
    ):
        end += 1
    if function_surname and text[end : end + 1] not in ("", ",", "、", "(", ";", "。"):
        return None  # 被告于本判决生效之日起: 于 is a preposition unless a name stands alone
    if text[end - 1] in _NOT_AFTER_NAME or (
        end < len(text) and (text[end] in _NOT_AFTER_NAME or text[end] in MASK_CLASS)
    ):
        return None
    return pos, end, False


_DECLARED_NAME: Final = re.compile(rf"[{CJK}]{{2,4}}(?=,[男女](?:[,。;]|$))")


def declared_name_end(text: str, start: int) -> int:
    """The end of a name with no known surname (次仁多吉) right before ``，男``/``，女``."""
    found = _DECLARED_NAME.match(text, start, start + 8)
    return found.end() if found else -1
