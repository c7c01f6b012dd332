"""How ``courtguard-collector`` subcommands print rows and times."""

from __future__ import annotations

import unicodedata
from datetime import datetime


def display_width(text: str) -> int:
    """Terminal columns ``text`` takes: wide and fullwidth characters (Chinese) take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - display_width(text))


def print_table(rows: list[list[str]], header: list[str]) -> None:
    """Columns padded to their widest cell, in terminal columns, so Chinese lines up."""
    widths = [max(display_width(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(_pad(str(cell), widths[i]) for i, cell in enumerate(row)).rstrip())


def format_time(value: datetime | None) -> str:
    """A UTC time as the tables show it, ``-`` for none."""
    return value.strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"
