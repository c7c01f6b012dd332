"""The ranges a request's values must lie in: what the store holds and arithmetic survives.

Every route reads its ids, times, dates and free text through these checks, so
a value out of range is refused with a 422 that names the parameter instead of
failing further down (an OverflowError, a database error: a 500):

- ids (alerts, saved filters, cursors) are signed 64-bit integers, the widest
  the store keeps (BIGINT on PostgreSQL, INTEGER on SQLite);
- times and dates lie in [1970-01-01, 9000-01-01) UTC, far enough from
  ``datetime``'s years 1 and 9999 that a time-zone shift, the day after or the
  month after can never overflow;
- text carries no NUL character, which PostgreSQL can neither store nor compare.

The ``Annotated`` types are for parameters FastAPI declares; the functions,
which raise ``ValueError`` with the reason, for values a route parses itself.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Final

from pydantic import AfterValidator, Field

MAX_ID: Final = 2**63 - 1
EARLIEST: Final = datetime(1970, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(9000, 1, 1, tzinfo=UTC)
_RANGE: Final = "between 1970-01-01 and 9000-01-01"


def check_id(value: int) -> int:
    if not 0 <= value <= MAX_ID:
        raise ValueError(f"must be between 0 and {MAX_ID}")
    return value


def check_time(value: datetime) -> datetime:
    """``value`` if it lies in the range; a naive time is taken as UTC for the check."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    try:
        inside = EARLIEST <= aware < LATEST
    except OverflowError:  # an offset that pushes the time past year 1 or 9999
        inside = False
    if not inside:
        raise ValueError(f"must be {_RANGE}")
    return value


def check_date(value: date) -> date:
    if not EARLIEST.date() <= value < LATEST.date():
        raise ValueError(f"must be {_RANGE}")
    return value


def check_text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def check_json_text(value: object) -> object:
    """A parsed JSON body whose every string (keys too) passes ``check_text``."""
    if isinstance(value, str):
        check_text(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_json_text(key)
            check_json_text(item)
    elif isinstance(value, list):
        for item in value:
            check_json_text(item)
    return value


#: A stored row's id in a path or query parameter.
StoreId = Annotated[int, Field(ge=0, le=MAX_ID)]
#: A time in a query parameter, within the range above.
BoundedTime = Annotated[datetime, AfterValidator(check_time)]

#: Free text in a path or query parameter (2,000 characters: the audit log's widest column).
Text = Annotated[str, Field(max_length=2000), AfterValidator(check_text)]
