"""NFKC normalisation that remembers where every character came from.

Rules match on the normalised text (full-width digits and letters folded,
``（`` to ``(``) but findings must point into the text as extracted, so a
clerk's editor and ``scan --fix`` land on the right characters. ``origin[i]``
is the index in the original text of normalised character ``i``;
``origin[len(text)]`` is the original length, so a half-open span maps back
with ``original_span``.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Final

#: Characters that stand for removed text: a span made only of them is already masked.
MASK_CHARS: Final = frozenset("×xX*＊Ｘｘ✕╳某")


@dataclass(frozen=True)
class Normalized:
    text: str
    origin: tuple[int, ...] | None  # None: identical to the original, index for index

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        if self.origin is None:
            return start, end
        return self.origin[start], self.origin[end]


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


def normalize(text: str) -> Normalized:
    """Fold full-width forms and compatibility characters, keeping an offset map."""
    if text.isascii():
        return Normalized(text, None)
    folded = text.translate(_ONE_FOR_ONE)
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
