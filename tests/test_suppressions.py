"""Every silenced lint or type check names its code and says why, on the same line.

``# noqa: S608 (only placeholders are formatted in)`` and
``# type: ignore[arg-type]  # a float works``: a reader sees what is silenced
and why it is safe without digging. A bare ``# noqa`` or ``# type: ignore``
would also silence every later, unrelated finding on that line.
"""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TREES = ("agent", "collector", "tests", "bench")

NOQA = re.compile(r"#\s*noqa\b(?P<rest>.*)", re.IGNORECASE)
NOQA_WITH_REASON = re.compile(r":\s*[A-Z]+[0-9]+(\s*,\s*[A-Z]+[0-9]+)*\s+\(\S[^)]*\)")
TYPE_IGNORE = re.compile(r"#\s*type:\s*ignore\b(?P<rest>.*)")
TYPE_IGNORE_WITH_REASON = re.compile(r"\[[a-z-]+(\s*,\s*[a-z-]+)*\]\s+#\s*\S")


def unexplained(source: str) -> list[tuple[int, str]]:
    """(line, comment) of each noqa or type: ignore comment without its codes and a reason."""
    found = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type != tokenize.COMMENT:
            continue
        noqa = NOQA.search(token.string)
        if noqa and not NOQA_WITH_REASON.match(noqa.group("rest")):
            found.append((token.start[0], token.string))
        ignore = TYPE_IGNORE.search(token.string)
        if ignore and not TYPE_IGNORE_WITH_REASON.match(ignore.group("rest")):
            found.append((token.start[0], token.string))
    return found


@pytest.mark.parametrize(
    ("comment", "explained"),
    [
        ("# noqa: S311 (jitter, not crypto)", True),
        ("# noqa: S608, E501 (constant table names)", True),
        ("# type: ignore[attr-defined]  # TestClient types .app as a bare ASGI app", True),
        ("# type: ignore[index, call-overload]  # a JSON object here", True),
        ("# noqa", False),
        ("# noqa: S101", False),
        ("# noqa: S101 - set above", False),
        ("# noqa (why)", False),
        ("# type: ignore", False),
        ("# type: ignore[arg-type]", False),
        ("# type: ignore  # why", False),
    ],
)
def test_the_check_tells_an_explained_suppression_from_a_bare_one(
    comment: str, explained: bool
) -> None:
    assert (unexplained(f"x = 1  {comment}\n") == []) is explained


def test_every_suppression_in_the_source_tree_says_why() -> None:
    offenders = [
        f"{path.relative_to(REPO)}:{line}: {comment}"
        for tree in TREES
        for path in sorted((REPO / tree).rglob("*.py"))
        for line, comment in unexplained(path.read_text(encoding="utf-8"))
    ]
    assert offenders == [], "give each its codes and a reason:\n" + "\n".join(offenders)
