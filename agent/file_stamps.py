"""A cheap "did these files change?": inode, size and modification time of each.

Readers that would otherwise re-read a file or run a command on every poll
compare stamps first and do the work only when a stamp moved. A stamp can miss
a change that keeps inode, size and time (a rewrite within one clock tick);
callers that cannot afford that also do the work on a slower timer.
"""

from __future__ import annotations

import os
from pathlib import Path

Stamp = tuple[tuple[int, int, int] | None, ...]


def file_stamp(*paths: str | Path) -> Stamp:
    """Inode, size and modification time (ns) of each path; None where it does not exist."""
    stamps: list[tuple[int, int, int] | None] = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            stamps.append(None)
            continue
        stamps.append((st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(stamps)
