"""Every sort order of both lists pages through all rows exactly once, in order, on both stores.

Some keys hold NULL (account, rule); SQLite and PostgreSQL put NULL at opposite
ends of an index, and the keyset must follow each one's own order.
"""

from __future__ import annotations

from datetime import datetime, timedelta
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
                 "不存在的文字", "wb_0",
                 # short words around longer ones: PostgreSQL asks its index for the longer
                 # ones only, then tests the whole text (custom-rule: both words, never so)
                 "M.RULE-2", "事件 第3类", "custom-rule", "%rule%"):
        check_text(db, stored, text, monkeypatch)


def test_only_words_of_three_characters_go_to_the_index() -> None:
    assert fulltext.indexed_words("ws-0042") == ["0042"]
    assert fulltext.indexed_words("判决书-123") == ["判决书", "123"]
    assert fulltext.indexed_words("违规外联") == ["违规外联"]
    assert fulltext.indexed_words("a.b-12") == []
    assert fulltext.indexed_words("%_\\rule") == ["rule"]


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


def by_severity(rows: list[dict[str, Any]]) -> dict[str, int]:
    counts = dict.fromkeys(SEVERITIES, 0)
    for row in rows:
        counts[row["severity"]] += 1
    return counts


def single_filters(kind: str) -> dict[str, Any]:
    """query → which rows of that list it keeps: one filter of each kind the console offers."""
    since = NOW - timedelta(minutes=8)
    last = "time" if kind == "events" else "last_seen"
    return {
        "host=ws-01": lambda r: r["host"] == "ws-01",
        "account=wb_03": lambda r: r["account"] == "wb_03",
        "kind=custom.kind1": lambda r: r["kind"] == "custom.kind1",
        "rule_id=custom.rule-2": lambda r: r["rule_id"] == "custom.rule-2",
        "severity=low": lambda r: r["severity"] == "low",
        "min_severity=high": lambda r: Severity(r["severity"]).rank >= Severity("high").rank,
        str(QueryParams({"since": since.isoformat()})):
            lambda r: datetime.fromisoformat(r[last]) >= since,
        "q=ws-02": lambda r: r["host"] == "ws-02",
    }


def test_single_filters_list_and_count_what_they_match(
        db: Database, stored: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Each single filter lists exactly its rows, and the counts by severity are exact,
    through the text index and through the scan for common text alike."""
    every_event = walk(data.events_listing, db, "events", "")
    every_alert = service.list_alerts(db, service.AlertFilter(), 1000)
    assert len(every_event) == len(stored["events"])
    for common in (fulltext.COMMON_TEXT, 3):
        monkeypatch.setattr(fulltext, "COMMON_TEXT", common)
        for query, keep in single_filters("events").items():
            expected = [e for e in every_event if keep(e)]
            assert expected, query
            rows = walk(data.events_listing, db, "events", query)
            assert [r["id"] for r in rows] == [e["id"] for e in expected], query
            counts = data.events_listing(db, QueryParams(query), NOW.tzinfo)["counts"]
            assert counts == by_severity(expected), (query, common)
        for query, keep in single_filters("alerts").items():
            wanted = [a for a in every_alert if keep(a)]
            assert wanted, query
            listing = data.alerts_listing(db, QueryParams(query), NOW.tzinfo)
            assert [a["id"] for a in listing["alerts"]] == [a["id"] for a in wanted], query
            assert listing["counts"]["severity"] == by_severity(wanted), query
            statuses = {s: sum(a["status"] == s for a in wanted) for s in service.STATUSES}
            assert listing["counts"]["status"] == statuses, query
            check_grouped(db, query, wanted)


def check_grouped(db: Database, query: str, wanted: list[dict[str, Any]]) -> None:
    """Groups by host, rule and account: count, highest severity and newest of their alerts."""
    for by, column in (("host", "host"), ("rule", "rule_id"), ("account", "account")):
        expected: dict[Any, list[dict[str, Any]]] = {}
        for alert in wanted:
            expected.setdefault(alert[column], []).append(alert)
        groups = data.alerts_listing(db, QueryParams(f"{query}&group={by}"),
                                     NOW.tzinfo)["groups"]
        assert {g["value"]: (g["count"], g["severity"], datetime.fromisoformat(g["last_seen"]))
                for g in groups} == {
            value: (len(alerts), max((a["severity"] for a in alerts), key=lambda s:
                                     Severity(s).rank),
                    max(datetime.fromisoformat(a["last_seen"]) for a in alerts))
            for value, alerts in expected.items()}, (query, by)
        assert [g["count"] for g in groups] == sorted((g["count"] for g in groups),
                                                      reverse=True)


def test_counts_under_text_beyond_the_window_are_lower_bounds(
        db: Database, stored: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Past ``TEXT_COUNT_WINDOW`` matches the counts cover only some of them and say so."""
    from collector.store import events

    every_event = walk(data.events_listing, db, "events", "")
    matching = by_severity([e for e in every_event if "ws-01" in e["host"]])
    exact = data.events_listing(db, QueryParams("q=ws-01"), NOW.tzinfo)
    assert exact["counts"] == matching and not exact.get("counts_partial")
    monkeypatch.setattr(events, "TEXT_COUNT_WINDOW", 4)
    bounded = data.events_listing(db, QueryParams("q=ws-01"), NOW.tzinfo)
    assert bounded["counts_partial"]
    assert all(bounded["counts"][s] <= matching[s] for s in SEVERITIES)
    assert sum(bounded["counts"].values()) == 4
    assert len(walk(data.events_listing, db, "events", "q=ws-01")) == sum(matching.values())


def test_alert_counts_follow_triage_under_every_filter_the_groups_hold(
        db: Database, stored: dict[str, Any]) -> None:
    """Counts read from ``alert_groups`` (status, severity, kind, one of host/account/rule)
    equal counting the listed alerts, after triage moved some between statuses."""
    from collector.store.audit import Actor

    every = service.list_alerts(db, service.AlertFilter(), 1000)
    actor = Actor("alice", via="test", client_address="192.0.2.10")
    service.transition(db, [a["id"] for a in every[::3]], "acknowledge", actor)
    service.transition(db, [a["id"] for a in every[1::4]], "close", actor,
                       resolution="false_positive", comment="测试")
    every = service.list_alerts(db, service.AlertFilter(), 1000)
    for query in ("", "status=new", "status=acknowledged,closed", "status=closed&host=ws-01",
                  "kind=custom.kind1&min_severity=medium", "severity=high&account=wb_03",
                  "rule_id=custom.rule-2&status=new,acknowledged"):
        wanted = walk(data.alerts_listing, db, "alerts", query)
        counts = data.alerts_listing(db, QueryParams(query), NOW.tzinfo)["counts"]
        assert counts["severity"] == by_severity(wanted), query
        assert counts["status"] == {s: sum(a["status"] == s for a in wanted)
                                    for s in service.STATUSES}, query
    assert {a["status"] for a in every} == {"new", "acknowledged", "closed"}
