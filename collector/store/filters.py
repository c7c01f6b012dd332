"""Pieces of WHERE clauses the listings share; every value reaches SQL as a bound parameter."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, or_


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
