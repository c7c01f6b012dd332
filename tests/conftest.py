"""Fixtures shared by every test."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests.postgres import server_url, unreachable_reason

# The command lines speak the locale's language (agent/i18n.py); the suite reads their
# English whatever the developer's locale, and tests/test_i18n.py sets Chinese where it wants it.
for _variable in ("LC_ALL", "LC_MESSAGES", "LANGUAGE"):
    os.environ.pop(_variable, None)
os.environ["LANG"] = "C.UTF-8"


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


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """The PostgreSQL server; its absence skips the case, except on CI, where it fails."""
    url = server_url()
    reason = unreachable_reason(url)
    if reason is not None:
        where = sa.make_url(url).render_as_string()
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {where} is required on CI: {reason}")
        pytest.skip(f"PostgreSQL at {where} is not reachable: {reason}")
    return url


#: Test directories by how long their files take, longest first: the package tests spend
#: minutes in a build or an installed Debian root, an end-to-end file up to a few minutes
#: with real processes. scripts/test.sh hands out whole files to the parallel workers in
#: this order (``--dist loadfile``), so the long files start at once, on different
#: workers, and the short ones fill in at the end instead of one long file finishing last.
LONG_FIRST = ("tests/packaging/", "tests/e2e/")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        starts = [item.nodeid.startswith(prefix) for prefix in LONG_FIRST]
        return starts.index(True) if True in starts else len(LONG_FIRST)

    items.sort(key=rank)
