"""Every sort order of both lists pages through all rows exactly once, in order, on both stores.

Some keys hold NULL (account, rule); SQLite and PostgreSQL put NULL at opposite
ends of an index, and the keyset must follow each one's own order.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from starlette.datastructures import QueryParams

from agent.events import Severity
from collector.alerts import service
from collector.console import data
from collector.console import params as p
from collector.store import fulltext
from collector.store.database import Database
from collector.store.events import EVENT_ORDERS
from tests.collector.conftest import TestClient, enroll, event, post_events
from tests.collector.console.conftest import NOW

SEVERITIES = ("info", "low", "medium", "high", "critical")


@pytest.fixture
def stored(client: TestClient, db: Database) -> dict[str, Any]:
    """36 events over 4 hosts; accounts and rule ids are missing on some (NULL)."""
    agent = enroll(client, db)
    batch = []
    for i in range(36):
        extra: dict[str, Any] = {}
        if i % 3:
            extra["rule_id"] = f"custom.rule-{i % 4}"
        evidence = {"account": f"wb_{i % 5:02d}"} if i % 2 else {"n": i}
        item = event(agent.agent_id, i + 1, kind=f"custom.kind{i % 3}",
                     severity=SEVERITIES[i % 5], host=f"ws-{i % 4:02d}",
                     time=NOW - timedelta(minutes=i // 2), evidence=evidence, **extra)
        item["summary"] = f"测试事件 第{i % 7}类 \"引号\" AND (括号)*"
        batch.append(item)
    assert post_events(client, agent, batch).status_code == 200
    return {"events": batch}


def walk(lister: Any, db: Database, kind: str, query: str) -> list[Any]:
    """Every row of a listing, page by page through its cursors (7 a page)."""
    found: list[Any] = []
    cursor = None
    for _ in range(50):
        params = QueryParams(query + "&limit=7" + (f"&cursor={cursor}" if cursor else ""))
        listing = lister(db, params, NOW.tzinfo)
        found += listing[kind]
        cursor = listing["next_cursor"]
        if cursor is None:
            return found
    raise AssertionError("the cursor never ended")


def null_low(value: Any, dialect: str) -> tuple[int, Any]:
    """A sort key that puts NULL where the dialect's index does (SQLite low, PostgreSQL high)."""
    if value is None:
        return (0 if dialect == "sqlite" else 2, "")
    return (1, value)


def test_every_order_pages_through_every_row(db: Database, stored: dict[str, Any]) -> None:
    for order in sorted(EVENT_ORDERS):
        check_event_order(db, stored, order)
    for order in sorted(service.ALERT_ORDERS):
        check_alert_order(db, order)


def check_event_order(db: Database, stored: dict[str, Any], order: str) -> None:
    rows = walk(data.events_listing, db, "events", f"sort={order}")
    assert sorted(r["id"] for r in rows) == sorted(e["id"] for e in stored["events"])
    columns = [c.name for c in EVENT_ORDERS[order].columns]

    def key(row: dict[str, Any]) -> tuple[Any, ...]:
        values = [Severity(row["severity"]).rank if c == "severity" else row[c] for c in columns]
        values[0] = null_low(values[0], db.dialect)
        return tuple(values)

    keys = [key(r) for r in rows]
    assert keys == sorted(keys, reverse=order.startswith("-")), order


def check_alert_order(db: Database, order: str) -> None:
    everything = service.list_alerts(db, service.AlertFilter(), 1000)
    assert len(everything) > 7
    rows = walk(data.alerts_listing, db, "alerts", f"sort={order}")
    assert sorted(r["id"] for r in rows) == sorted(a["id"] for a in everything)
    columns = [c.name for c in service.ALERT_ORDERS[order].columns]

    def key(row: dict[str, Any]) -> tuple[Any, ...]:
        values = [Severity(row["severity"]).rank if c == "severity" else row[c] for c in columns]
        values[0] = null_low(values[0], db.dialect)
        return tuple(values)

    keys = [key(r) for r in rows]
    assert keys == sorted(keys, reverse=order.startswith("-")), order


def test_alerts_default_to_severity_then_last_seen(db: Database,
                                                   stored: dict[str, Any]) -> None:
    rows = data.alerts_listing(db, QueryParams(""), NOW.tzinfo)["alerts"]
    ranks = [(Severity(r["severity"]).rank, r["last_seen"]) for r in rows]
    assert ranks == sorted(ranks, reverse=True)
    assert rows[0]["severity"] == "critical"
    check_groups(db)


def test_sort_keys_are_whitelisted(db: Database, stored: dict[str, Any]) -> None:
    for value in ("sort=time; DROP TABLE events", "sort=pk", "sort=--time", "sort=evidence"):
        for lister in (data.events_listing, data.alerts_listing):
            with pytest.raises(p.FilterError) as refused:
                lister(db, QueryParams(value), NOW.tzinfo)
            assert refused.value.field == "sort"
    cursor = data.events_listing(db, QueryParams("sort=host&limit=3"), NOW.tzinfo)["next_cursor"]
    with pytest.raises(p.FilterError):
        data.events_listing(db, QueryParams(f"sort=time&limit=3&cursor={cursor}"), NOW.tzinfo)


def check_groups(db: Database) -> None:
    everything = service.list_alerts(db, service.AlertFilter(), 1000)
    groups = data.alerts_listing(db, QueryParams("group=host"), NOW.tzinfo)["groups"]
    expected: dict[str, int] = {}
    for alert in everything:
        expected[alert["host"]] = expected.get(alert["host"], 0) + 1
    assert {g["value"]: g["count"] for g in groups} == expected
    assert [g["count"] for g in groups] == sorted(expected.values(), reverse=True)
    with pytest.raises(p.FilterError):
        data.alerts_listing(db, QueryParams("group=severity"), NOW.tzinfo)


def test_free_text_finds_what_contains_it(db: Database, stored: dict[str, Any],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    for text in ("第3类", "WS-01", "rule-2", "\"引号\"", "AND (", "*", "类", "ws", "NEAR(a b)",
                 "不存在的文字", "wb_0"):
        check_text(db, stored, text, monkeypatch)


def check_text(db: Database, stored: dict[str, Any], text: str,
               monkeypatch: pytest.MonkeyPatch) -> None:
    """The trigram index (or, for two characters or common text, the scan) finds exactly the
    events whose summary, host or rule contains the text, case-insensitively."""
    def contains(e: dict[str, Any]) -> bool:
        return any(text.lower() in (e.get(f) or "").lower() for f in ("summary", "host",
                                                                      "rule_id"))

    expected = sorted(e["id"] for e in stored["events"] if contains(e))
    for common in (fulltext.COMMON_TEXT, 3):  # the index path, then the scan for common text
        monkeypatch.setattr(fulltext, "COMMON_TEXT", common)
        rows = walk(data.events_listing, db, "events", str(QueryParams({"q": text})))
        assert sorted(r["id"] for r in rows) == expected, (text, common)
        counts = data.events_listing(db, QueryParams({"q": text}), NOW.tzinfo)["counts"]
        assert sum(counts.values()) == len(expected)
        every = service.list_alerts(db, service.AlertFilter(), 1000)
        wanted = sorted(a["id"] for a in every if any(
            text.lower() in (a.get(f) or "").lower() for f in ("title", "host", "account",
                                                               "rule_id")))
        alerts = walk(data.alerts_listing, db, "alerts", str(QueryParams({"q": text})))
        assert sorted(a["id"] for a in alerts) == wanted, (text, common)
        listing = data.alerts_listing(db, QueryParams({"q": text, "group": "host"}), NOW.tzinfo)
        assert sum(g["count"] for g in listing["groups"]) == len(wanted)
        assert sum(listing["counts"]["status"].values()) == len(wanted)
