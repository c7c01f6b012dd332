"""The evidence directory: a byte budget, torn captures dropped, records that survive a restart."""

from __future__ import annotations

from pathlib import Path

from agent.evidence.artifacts import ArtifactStore


def test_a_capture_that_would_pass_the_budget_is_not_admitted(tmp_path: Path) -> None:
    """Two worst-case captures fit in the budget, a third does not."""
    store = ArtifactStore(tmp_path, 100_000)
    assert store.admit("a", 40_000) is not None
    assert store.admit("b", 40_000) is not None
    assert store.admit("c", 40_000) is None


def test_a_finished_pcap_counts_its_real_size(tmp_path: Path) -> None:
    """Once hashed, a pcap takes its size from the budget, not its worst case."""
    store = ArtifactStore(tmp_path, 100_000)
    record = store.admit("a", 90_000)
    assert record is not None
    store.pcap("a").write_bytes(b"x" * 1000)
    done = store.finish(record, packets=1)
    assert done.size == 1000 and done.state == "ready" and len(done.sha256) == 64
    assert store.admit("b", 90_000) is not None


def test_torn_captures_are_dropped_and_ready_ones_kept(tmp_path: Path) -> None:
    """A capture a stop cut short is removed at the next start; a hashed one stays with the
    offset the collector acknowledged."""
    store = ArtifactStore(tmp_path, 1_000_000)
    torn = store.admit("torn", 1000)
    ready = store.admit("ready", 1000)
    assert torn is not None and ready is not None
    for name in ("torn", "ready"):
        store.pcap(name).write_bytes(b"y" * 500)
    store.acknowledged(store.finish(ready, packets=2), 200)
    again = ArtifactStore(tmp_path, 1_000_000)
    assert again.drop_torn() == ["torn"]
    assert [(r.event_id, r.acknowledged) for r in again.records()] == [("ready", 200)]
    assert not again.pcap("torn").exists()
