"""How ``courtguard-collector`` subcommands print rows and times."""

from __future__ import annotations

from datetime import datetime


def print_table(rows: list[list[str]], header: list[str]) -> None:
    """Columns padded to their widest cell (by characters)."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)).rstrip())


def format_time(value: datetime | None) -> str:
    """A UTC time as the tables show it, ``-`` for none."""
    return value.strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"
