"""Recent check results in the server's memory, so a page can come back to them.

Each upload's outcome (and the original bytes, to rebuild the corrected copy
after a decision) is kept under a random token for ``ttl_s`` and only for the
user who uploaded it. The total size is bounded: the oldest entries go first.
Nothing here is written to disk; a restart forgets every entry, and the page
then asks for the file again. The collector serves from one process, so one
map is enough.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Final

#: Default budget for everything kept (original files and their corrected copies).
DEFAULT_BUDGET_BYTES: Final = 256 * 1024 * 1024
DEFAULT_TTL_S: Final = 3600.0


@dataclass
class Kept:
    owner: str
    data: bytes
    outcome: dict[str, Any]
    profile: str | None
    stored_at: float = field(default_factory=time.monotonic)

    @property
    def cost(self) -> int:
        corrected = self.outcome.get("corrected") or b""
        return len(self.data) + len(corrected) + 2 * len(self.data)  # text and layout, roughly


class ResultCache:
    def __init__(self, budget_bytes: int = DEFAULT_BUDGET_BYTES,
                 ttl_s: float = DEFAULT_TTL_S) -> None:
        self.budget_bytes = budget_bytes
        self.ttl_s = ttl_s
        self._entries: OrderedDict[str, Kept] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, owner: str, data: bytes, outcome: dict[str, Any], profile: str | None) -> str:
        token = secrets.token_urlsafe(18)
        kept = Kept(owner, data, outcome, profile)
        with self._lock:
            self._entries[token] = kept
            self._trim()
        return token

    def replace(self, token: str, outcome: dict[str, Any]) -> None:
        with self._lock:
            kept = self._entries.get(token)
            if kept is not None:
                kept.outcome = outcome

    def get(self, token: str, owner: str) -> Kept | None:
        """The entry if it is still kept and ``owner`` uploaded it."""
        with self._lock:
            self._expire()
            kept = self._entries.get(token)
            if kept is None or not secrets.compare_digest(kept.owner, owner):
                return None
            return kept

    def __len__(self) -> int:
        return len(self._entries)

    def _expire(self) -> None:
        now = time.monotonic()
        while self._entries:
            token, oldest = next(iter(self._entries.items()))
            if now - oldest.stored_at <= self.ttl_s:
                break
            del self._entries[token]

    def _trim(self) -> None:
        self._expire()
        total = sum(kept.cost for kept in self._entries.values())
        while total > self.budget_bytes and len(self._entries) > 1:
            _token, oldest = self._entries.popitem(last=False)
            total -= oldest.cost
