"""Build agent/detectors/documents/checker/data/words.txt from jieba's dictionary.

    pip install jieba==0.42.1   # or: pip install '.[wordlist]'
    python scripts/build_name_words.py

The checker decides where a Chinese name ends (被害人曹建谈恋爱: 曹建, then
谈恋爱) by asking whether a common word starts at the name's last character.
It needs the words and their frequencies, not jieba itself: importing jieba
and loading its dictionary costs seconds, too much for a one-file check. This
script keeps the two- and three-character words of jieba's dictionary (MIT
licence) used at least MIN_FREQUENCY times, without person, place and
organisation names, numerals and non-Chinese entries.
"""

from __future__ import annotations

from pathlib import Path

import jieba

MIN_FREQUENCY = 100
SKIPPED_TAGS = ("nr", "ns", "nz", "nt", "m", "eng", "x")
OUT = (
    Path(__file__).resolve().parents[1] / "agent/detectors/documents/checker/data/words.txt"
)


def main() -> None:
    source = Path(jieba.__file__).with_name("dict.txt")
    kept: dict[str, int] = {}
    for line in source.read_text(encoding="utf-8").splitlines():
        word, frequency, tag = line.split()
        if (
            2 <= len(word) <= 3
            and int(frequency) >= MIN_FREQUENCY
            and not tag.startswith(SKIPPED_TAGS)
            and all("\u4e00" <= c <= "\u9fff" for c in word)
        ):
            kept[word] = int(frequency)
    header = (
        f"# Two- and three-character words of jieba 0.42.1's dict.txt (MIT licence), frequency "
        f">= {MIN_FREQUENCY}, without names, numerals and non-Chinese entries; built by "
        "scripts/build_name_words.py.\n"
    )
    OUT.write_text(
        header + "\n".join(f"{w} {f}" for w, f in sorted(kept.items())) + "\n", encoding="utf-8"
    )
    print(f"{len(kept)} words -> {OUT}")


if __name__ == "__main__":
    main()
