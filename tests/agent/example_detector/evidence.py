"""The example detector's one event kind and its evidence."""

from __future__ import annotations

from typing import ClassVar, Final

from agent.events import Evidence


class CountEvidence(Evidence):
    FINGERPRINT_FIELDS: ClassVar[tuple[str, ...]] = ()

    count: int
    min_count: int


EXAMPLE_EVIDENCE_MODELS: Final[dict[str, type[Evidence]]] = {"example.count": CountEvidence}
