"""Severity and rule ids: what events and policy rules share, without the event models.

``agent.events`` re-exports both. They live apart so that reading a policy
(``agent.policy.models``, and so ``courtguard-agent scan``) does not build
the wire contract's pydantic models: that was a third of scan's start-up.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final

from pydantic import StringConstraints

RULE_ID_PATTERN: Final = r"^[a-z][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)+$"
RuleId = Annotated[str, StringConstraints(pattern=RULE_ID_PATTERN, max_length=128)]


class Severity(StrEnum):
    """How urgent an event is; ordered, so the spool can drop the least severe first."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    @classmethod
    def from_rank(cls, rank: int) -> Severity:
        return _SEVERITY_BY_RANK[rank]


_SEVERITY_RANK: Final = {s: i for i, s in enumerate(Severity)}
_SEVERITY_BY_RANK: Final = dict(enumerate(Severity))
