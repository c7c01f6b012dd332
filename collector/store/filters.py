"""Pieces of WHERE clauses the listings share; every value reaches SQL as a bound parameter."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, literal, or_, tuple_


def equal_to(*pairs: tuple[Any, Any]) -> list[ColumnElement[bool]]:
    """``column = value`` for each pair whose value is given (not None, not empty)."""
    return [column == value for column, value in pairs if value is not None and value != ""]


def one_of(*pairs: tuple[Any, Sequence[Any]]) -> list[ColumnElement[bool]]:
    """``column IN (values)`` for each pair with values."""
    return [column.in_(list(values)) for column, values in pairs if values]


def within(column: Any, since: datetime | None, until: datetime | None) -> list[Any]:
    """``since <= column < until``, either end optional."""
    conditions: list[Any] = []
    if since is not None:
        conditions.append(column >= since)
    if until is not None:
        conditions.append(column < until)
    return conditions


def containing(text: str | None, *columns: Any) -> list[Any]:
    """Any of ``columns`` contains ``text`` (case-insensitive; ``%`` and ``_`` are literal)."""
    if not text:
        return []
    return [or_(*(column.icontains(text, autoescape=True) for column in columns))]


@dataclass(frozen=True)
class SortOrder:
    """One whitelisted listing order: its columns, the last ones a unique tiebreak.

    Only the first column may hold NULL; every column runs in one direction, so a
    matching index (``key, time, id``) serves the order forwards or backwards.
    """

    name: str
    columns: tuple[Any, ...]
    descending: bool

    def order_by(self) -> list[Any]:
        return [column.desc() if self.descending else column.asc() for column in self.columns]

    def after(self, values: Sequence[Any], dialect: str) -> Any:
        """Rows strictly after the row whose sort values are ``values``, in this order.

        NULL sorts where the dialect's index puts it (lowest on SQLite, highest on
        PostgreSQL), so the keyset walks the index the ORDER BY uses.
        """
        key, rest = self.columns[0], self.columns[1:]
        key_value, rest_values = values[0], values[1:]

        def beyond(columns: Sequence[Any], bound: Sequence[Any]) -> Any:
            left = tuple_(*columns)
            right = tuple_(*(literal(v, c.type) for c, v in zip(columns, bound, strict=True)))
            return left < right if self.descending else left > right

        if not key.nullable:
            return beyond(self.columns, values)
        nulls_high = dialect == "postgresql"
        nulls_last_in_walk = nulls_high != self.descending
        if key_value is None:
            same = and_(key.is_(None), beyond(rest, rest_values))
            return same if nulls_last_in_walk else or_(same, key.is_not(None))
        past = beyond(self.columns, values)
        return or_(past, key.is_(None)) if nulls_last_in_walk else past


def parse_sort(value: str | None, orders: dict[str, SortOrder], default: str) -> SortOrder:
    """``host`` or ``-host`` (descending) from the whitelist; ValueError for anything else."""
    chosen = (value or "").strip() or default
    if chosen not in orders:
        raise ValueError(f"{chosen!r} is not one of {', '.join(sorted(orders))}")
    return orders[chosen]


def sort_orders(columns: dict[str, tuple[Any, ...]]) -> dict[str, SortOrder]:
    """``name`` (ascending) and ``-name`` (descending) for each named column tuple."""
    found: dict[str, SortOrder] = {}
    for name, cols in columns.items():
        found[name] = SortOrder(name, cols, False)
        found[f"-{name}"] = SortOrder(f"-{name}", cols, True)
    return found
