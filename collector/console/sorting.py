"""Column headers that sort a listing: each links to the same filters in another order.

The orders themselves are whitelisted in the store (``EVENT_ORDERS``,
``service.ALERT_ORDERS``); a header only ever links to one of those names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import urlencode

from starlette.requests import Request

#: Columns whose first click sorts largest (newest, most severe, most frequent) first.
DESCENDING_FIRST: Final = frozenset({"time", "severity", "count", "last_seen", "id"})


@dataclass(frozen=True)
class SortLink:
    url: str
    #: "ascending", "descending" or "none": the header's aria-sort.
    state: str


def sort_links(request: Request, current: str, keys: list[str]) -> dict[str, SortLink]:
    """For each sortable column, the address that sorts by it (or flips it when current)."""
    pairs = [(k, v) for k, v in request.query_params.multi_items() if k not in ("sort", "cursor")]
    links: dict[str, SortLink] = {}
    for key in keys:
        if current == key:
            target, state = f"-{key}", "ascending"
        elif current == f"-{key}":
            target, state = key, "descending"
        else:
            target, state = (f"-{key}" if key in DESCENDING_FIRST else key), "none"
        links[key] = SortLink(f"{request.url.path}?{urlencode([*pairs, ('sort', target)])}",
                              state)
    return links
