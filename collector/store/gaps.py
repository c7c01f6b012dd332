"""Sequence gaps: seqs an agent skipped, recorded when they are passed and filled when they arrive.

Each agent numbers its events 1, 2, 3, ... and the collector keeps the highest
it has stored (``agents.max_seq``). A batch whose seqs jump past
``max_seq + 1`` opens a gap; a later event whose seq lies inside an open gap
fills it, or splits it in two. ``plan_gaps`` decides, purely; ``apply_gaps``
writes the plan inside the ingest transaction.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from collector.store.tables import sequence_gaps

Range = tuple[int, int]


@dataclass(frozen=True)
class OpenGap:
    id: int
    first_seq: int
    last_seq: int
    detected_at: datetime | None = None


@dataclass
class GapPlan:
    """What one batch does to an agent's gaps."""

    max_seq: int
    opened: list[Range] = field(default_factory=list)
    filled: list[int] = field(default_factory=list)  # gap ids now wholly received
    shrunk: dict[int, Range] = field(default_factory=dict)  # gap id -> its first remaining range
    split: list[tuple[int, Range]] = field(default_factory=list)  # (source gap id, extra range)


def _remaining(first: int, last: int, arrived: Sequence[int]) -> list[Range]:
    ranges: list[Range] = []
    cursor = first
    for seq in arrived:
        if seq > cursor:
            ranges.append((cursor, seq - 1))
        cursor = seq + 1
    if cursor <= last:
        ranges.append((cursor, last))
    return ranges


def plan_gaps(max_seq: int, seqs: Iterable[int], open_gaps: Iterable[OpenGap]) -> GapPlan:
    """Decide which gaps ``seqs`` (newly stored events' seqs) open, fill or split."""
    ordered = sorted(set(seqs))
    split_at = bisect.bisect_right(ordered, max_seq)
    below, above = ordered[:split_at], ordered[split_at:]
    plan = GapPlan(max_seq=max(max_seq, above[-1]) if above else max_seq)
    expected = max_seq + 1
    for seq in above:
        if seq > expected:
            plan.opened.append((expected, seq - 1))
        expected = seq + 1
    if not below:
        return plan
    for gap in open_gaps:
        lo = bisect.bisect_left(below, gap.first_seq)
        hi = bisect.bisect_right(below, gap.last_seq)
        if lo == hi:
            continue
        remaining = _remaining(gap.first_seq, gap.last_seq, below[lo:hi])
        if not remaining:
            plan.filled.append(gap.id)
            continue
        plan.shrunk[gap.id] = remaining[0]
        plan.split.extend((gap.id, extra) for extra in remaining[1:])
    return plan


def load_open_gaps(conn: Connection, agent_id: str, low: int, high: int) -> list[OpenGap]:
    """The agent's open gaps that overlap [low, high]."""
    rows = conn.execute(
        select(
            sequence_gaps.c.id, sequence_gaps.c.first_seq, sequence_gaps.c.last_seq,
            sequence_gaps.c.detected_at,
        ).where(
            sequence_gaps.c.agent_id == agent_id,
            sequence_gaps.c.filled_at.is_(None),
            sequence_gaps.c.first_seq <= high,
            sequence_gaps.c.last_seq >= low,
        )
    )
    return [OpenGap(r.id, r.first_seq, r.last_seq, r.detected_at) for r in rows]


def apply_gaps(
    conn: Connection, agent_id: str, plan: GapPlan, gaps: Iterable[OpenGap], now: datetime
) -> None:
    """Write ``plan``; ``gaps`` are the open gaps it was made from."""
    detected = {gap.id: gap.detected_at or now for gap in gaps}
    rows = [
        {"agent_id": agent_id, "first_seq": first, "last_seq": last, "detected_at": now}
        for first, last in plan.opened
    ]
    rows += [
        {"agent_id": agent_id, "first_seq": first, "last_seq": last,
         "detected_at": detected.get(source, now)}
        for source, (first, last) in plan.split
    ]
    if rows:
        conn.execute(insert(sequence_gaps), rows)
    if plan.filled:
        conn.execute(
            update(sequence_gaps).where(sequence_gaps.c.id.in_(plan.filled)).values(filled_at=now)
        )
    for gap_id, (first, last) in plan.shrunk.items():
        conn.execute(
            update(sequence_gaps)
            .where(sequence_gaps.c.id == gap_id)
            .values(first_seq=first, last_seq=last)
        )
