"""The in-memory result cache: only the uploader gets an entry back; size and age bounded."""

from __future__ import annotations

from collector.doccheck.results import ResultCache


def test_owner_only_and_budget() -> None:
    cache = ResultCache(budget_bytes=10_000, ttl_s=3600)
    first = cache.put("shuji", b"a" * 2000, {"corrected": b"b" * 1000}, None)
    assert cache.get(first, "shuji") is not None
    assert cache.get(first, "shuji2") is None
    assert cache.get("no-such-token", "shuji") is None
    second = cache.put("shuji", b"c" * 2000, {"corrected": None}, "spc-2016")
    # the first entry (about 7,000 bytes with its text) goes to make room for the second
    assert cache.get(first, "shuji") is None
    kept = cache.get(second, "shuji")
    assert kept is not None and kept.profile == "spc-2016"
    cache.replace(second, {"corrected": b"new"})
    replaced = cache.get(second, "shuji")
    assert replaced is not None and replaced.outcome == {"corrected": b"new"}


def test_entries_expire() -> None:
    cache = ResultCache(ttl_s=-1)  # every entry is already too old
    token = cache.put("shuji", b"x", {}, None)
    assert cache.get(token, "shuji") is None
    assert len(cache) == 0
