"""plan_gaps: which sequence gaps a batch opens, splits and fills."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from collector.store.gaps import OpenGap, plan_gaps


def test_contiguous_opens_nothing() -> None:
    """Seqs that continue max_seq without a jump open no gap."""
    plan = plan_gaps(3, [4, 5, 6], [])
    assert (plan.max_seq, plan.opened) == (6, [])


def test_jump_opens_gap() -> None:
    """A jump past max_seq + 1 opens the skipped range."""
    assert plan_gaps(3, [7], []).opened == [(4, 6)]


def test_jumps_inside_batch() -> None:
    """Holes between the batch's own seqs are gaps too."""
    assert plan_gaps(0, [1, 3, 6], []).opened == [(2, 2), (4, 5)]


def test_fill_whole_gap() -> None:
    """Events covering a whole gap fill it."""
    plan = plan_gaps(9, [4, 5], [OpenGap(1, 4, 5)])
    assert (plan.filled, plan.shrunk, plan.split) == ([1], {}, [])


def test_split_gap() -> None:
    """An event in the middle of a gap leaves two ranges."""
    plan = plan_gaps(9, [5], [OpenGap(1, 3, 7)])
    assert plan.shrunk == {1: (3, 4)} and plan.split == [(1, (6, 7))]


def test_old_seq_outside_gaps_ignored() -> None:
    """A seq below max_seq in no gap (a reinstalled agent) changes no gap."""
    plan = plan_gaps(9, [2], [OpenGap(1, 5, 6)])
    assert (plan.opened, plan.filled, plan.shrunk) == ([], [], {})


@given(st.sets(st.integers(min_value=1, max_value=200), min_size=1))
def test_gaps_are_exactly_the_missing_seqs(seqs: set[int]) -> None:
    """From an empty start, the opened gaps are exactly the seqs below the max that never came."""
    plan = plan_gaps(0, seqs, [])
    missing = {s for first, last in plan.opened for s in range(first, last + 1)}
    assert missing == set(range(1, max(seqs) + 1)) - seqs
    assert plan.max_seq == max(seqs)
