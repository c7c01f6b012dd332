"""Fixtures shared by every test."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _restore_root_logging() -> Iterator[None]:
    """Undo a daemon's logging set-up after each test.

    ``courtguard-collector`` points the root logger at the stderr it starts
    with; run in-process, that is pytest's capture of one test, closed after it.
    """
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
