"""file_stamp: a changed file changes its stamp; a missing one is None."""

from __future__ import annotations

from pathlib import Path

from agent.file_stamps import file_stamp


def test_a_write_changes_the_stamp_and_a_missing_file_is_none(tmp_path: Path) -> None:
    """Appending to a file moves its stamp; an absent path stamps as None, in order."""
    present = tmp_path / "spool.db"
    present.write_bytes(b"a")
    before = file_stamp(present, tmp_path / "absent")
    assert before[1] is None and before[0] is not None
    assert file_stamp(present, tmp_path / "absent") == before
    with present.open("ab") as handle:
        handle.write(b"b")
    assert file_stamp(present, tmp_path / "absent") != before
