"""NFKC normalisation that remembers where every character came from.

Rules match on the normalised text (full-width digits and letters folded,
``（`` to ``(``) but findings must point into the text as extracted, so a
clerk's editor and ``scan --fix`` land on the right characters. ``origin[i]``
is the index in the original text of normalised character ``i``;
``origin[len(text)]`` is the original length, so a half-open span maps back
with ``original_span``.

Line breaks are not part of the language: a judgment copied from the
publication site has none, one extracted from a PDF has one every 38 or so
characters, mid-name. So a line break is dropped unless it separates two
ASCII letters or digits (where it keeps two numbers apart), and the checks see
the same text whatever the layout; the offset map still points into the text
as extracted.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass
from typing import Final

#: Characters that stand for removed text: a span made only of them is already masked.
MASK_CHARS: Final = frozenset("×xX*＊Ｘｘ✕╳某")


@dataclass(frozen=True)
class Normalized:
    text: str
    origin: tuple[int, ...] | None  # None: identical to the original, index for index
    #: When only line breaks were dropped: where each kept run starts in ``text`` and in the
    #: original (a bisect per finding instead of a map of every character).
    runs: tuple[tuple[int, ...], tuple[int, ...]] | None = None

    def original_index(self, index: int) -> int:
        if self.origin is not None:
            return self.origin[index]
        if self.runs is None:
            return index
        starts, originals = self.runs
        run = bisect_right(starts, index) - 1
        return originals[run] + index - starts[run]

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        if self.origin is None and self.runs is None:
            return start, end
        if end <= start:
            return self.original_index(start), self.original_index(start)
        # The end is one past the last character's origin: a dropped line break after the
        # span stays outside it.
        return self.original_index(start), self.original_index(end - 1) + 1


def _fold(char: str) -> str:
    folded = unicodedata.normalize("NFKC", char)
    # NFKC turns the multiplication-sign mask into itself but some fonts use U+2715;
    # fold every mask glyph to one character so patterns need to know one.
    if folded in ("✕", "╳", "＊"):
        return "×"
    return folded


#: Full-width ASCII and the ideographic space: what Chinese text mostly needs folding,
#: one character for one, so the offsets do not move.
_ONE_FOR_ONE: Final = {
    **{code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)},
    0x3000: 0x20,
    0xFF0A: ord("×"),  # ＊ is a mask character here, like ×
    0x2715: ord("×"),
    0x2573: ord("×"),
}


#: The characters ``_ONE_FOR_ONE`` folds: found first, then replaced one distinct character at a
#: time (a dense judgment has a dozen distinct ones), several times faster than ``translate``
#: looking every character of the text up in the table.
_FOLDABLE: Final = re.compile("[" + "".join(re.escape(chr(code)) for code in _ONE_FOR_ONE) + "]")


def _fold_one_for_one(text: str) -> str:
    for char in set(_FOLDABLE.findall(text)):
        text = text.replace(char, chr(_ONE_FOR_ONE[ord(char)]))
    return text


_LINE_BREAK: Final = re.compile(r"[\r\n]+")


def _is_ascii_alnum(char: str) -> bool:
    return char.isascii() and char.isalnum()


def _join_lines(text: str) -> Normalized:
    """``text`` without the line breaks that do not separate two ASCII letters or digits."""
    pieces: list[str] = []
    starts: list[int] = [0]
    originals: list[int] = [0]
    position = 0
    length = 0
    for found in _LINE_BREAK.finditer(text):
        start, end = found.span()
        if (
            start
            and end < len(text)
            and _is_ascii_alnum(text[start - 1])
            and _is_ascii_alnum(text[end])
        ):
            continue
        pieces.append(text[position:start])
        length += start - position
        position = end
        starts.append(length)
        originals.append(end)
    if not pieces:
        return Normalized(text, None)
    pieces.append(text[position:])
    return Normalized("".join(pieces), None, (tuple(starts), tuple(originals)))


def normalize(text: str) -> Normalized:
    """Fold full-width forms and compatibility characters, drop line breaks; keep an offset map."""
    if text.isascii():
        return Normalized(text, None)
    folded = _fold_text(text)
    joined = _join_lines(folded.text)
    if joined.runs is None:
        return folded
    if folded.origin is None:
        return joined
    origin = folded.origin
    return Normalized(
        joined.text,
        tuple(origin[joined.original_index(i)] for i in range(len(joined.text) + 1)),
    )


def _fold_text(text: str) -> Normalized:
    folded = _fold_one_for_one(text)
    if unicodedata.is_normalized("NFKC", folded):
        return Normalized(folded, None)
    pieces: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        if ord(char) < 0x2000 or "\u4e00" <= char <= "\u9fff":
            pieces.append(char)
            origin.append(index)
            continue
        folded = _fold(char)
        pieces.append(folded)
        origin.extend([index] * len(folded))
    origin.append(len(text))
    return Normalized("".join(pieces), tuple(origin))


def is_masked(fragment: str) -> bool:
    """True when the fragment already hides what it stood for (××, 某某, ***)."""
    return any(c in MASK_CHARS for c in fragment)
