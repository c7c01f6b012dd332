"""Values the store cannot hold are refused by validation (422 naming the event), never a 500.

Each case puts one such value, as raw JSON, in the middle event of a batch of
three: the collector must answer 422 with that event's index and store nothing,
and the batch without it (what the agent resends after setting it aside) must
be stored whole. Every case runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from collector.store.database import Database
from collector.store.tables import events
from tests.collector.conftest import EnrolledAgent, batch_bytes, event, heartbeat, post_events

RAW = "@@raw@@"
DEEP_40 = '{"a":' * 40 + "1" + "}" * 40
DEEP_300 = "[" * 300 + "]" * 300

#: (field, raw JSON put in it): ``evidence.v`` is a value inside the evidence object.
UNSTORABLE = [
    ("evidence.v", "1180591620717411303424"),
    ("evidence.v", "-9223372036854775809"),
    ("evidence.v", "9223372036854775808"),
    ("evidence.v", '{"nested": [1, 2, 36893488147419103232]}'),
    ("evidence.v", "NaN"),
    ("evidence.v", "Infinity"),
    ("evidence.v", "-Infinity"),
    ("evidence.v", "1e400"),
    ("evidence.v", '"a\\u0000b"'),
    ("evidence.v", '"\\ud800"'),
    ("evidence.v", '"\\udcb0 tail"'),
    ("evidence.v", '{"k\\u0000": 1}'),
    ("evidence.v", '{"\\udfff": 1}'),
    ("evidence.v", DEEP_40),
    ("evidence.v", DEEP_300),
    ("time", '"9999-12-31T23:59:59-01:00"'),
    ("time", '"0001-01-01T00:00:00+01:00"'),
    ("seq", "9223372036854775808"),
    ("seq", "18446744073709551616"),
    ("summary", '"摘要\\u0000"'),
    ("summary", '"\\ud83d"'),
    ("host", '"ws\\u0000"'),
    ("policy_version", '"v\\u00001"'),
    ("heartbeat.interval_s", "1e400"),
    ("heartbeat.spool_depth", "9223372036854775808"),
]


def _count(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one())


def _body_with(agent_id: str, batch: list[dict[str, Any]], raw: str) -> bytes:
    return batch_bytes(agent_id, batch).replace(orjson.dumps(RAW), raw.encode())


@pytest.mark.parametrize(("field", "raw"), UNSTORABLE, ids=[f"{f}={r[:30]}" for f, r in UNSTORABLE])
def test_unstorable_value_refused_by_index(
    client: Any, db: Database, agent: EnrolledAgent, field: str, raw: str
) -> None:
    """The event holding the value is refused by index; the others are stored on resend."""
    first, bad, last = (event(agent.agent_id, seq, kind="site.custom") for seq in (1, 2, 3))
    if field == "evidence.v":
        bad["evidence"] = {"v": RAW}
    elif field.startswith("heartbeat."):
        bad = heartbeat(agent.agent_id, 2, **{field.split(".")[1]: RAW})
    else:
        bad[field] = RAW
    body = _body_with(agent.agent_id, [first, bad, last], raw)
    response = client.post("/api/v1/events", content=body, headers=agent.headers())
    assert response.status_code == 422, response.text
    assert {error["index"] for error in response.json()["errors"]} == {1}
    assert _count(db) == 0
    resent = post_events(client, agent, [first, last])
    assert resent.status_code == 200 and resent.json()["accepted"] == [first["id"], last["id"]]
    assert _count(db) == 2


def test_unstorable_value_in_large_batch_refused_by_index(
    client: Any, db: Database, agent: EnrolledAgent
) -> None:
    """A body over a megabyte (parsed first with orjson, which refuses lone surrogates) names
    the bad event too, instead of refusing the whole body as malformed."""
    batch = [event(agent.agent_id, seq, kind="site.custom", evidence={"note": "x" * 300})
             for seq in range(1, 4001)]
    batch[2500]["evidence"] = {"v": RAW}
    body = _body_with(agent.agent_id, batch, '"\\ud800"')
    assert len(body) > 1024 * 1024
    response = client.post("/api/v1/events", content=body, headers=agent.headers())
    assert response.status_code == 422, response.text
    assert [error["index"] for error in response.json()["errors"]] == [2500]


def test_largest_storable_values_are_stored(
    client: Any, db: Database, agent: EnrolledAgent
) -> None:
    """The limits themselves are storable: 64-bit integer bounds, years 1 and 9999 in UTC,
    the largest seq, 32 levels of nesting."""
    nested: Any = 1
    for _ in range(31):
        nested = {"a": nested}
    edge = event(agent.agent_id, 2**63 - 1, kind="site.custom", evidence={
        "max": 2**63 - 1, "min": -(2**63), "float": 1.7976931348623157e308, "nested": nested,
        "text": "中文 ✓ \U0001f600"})
    early = event(agent.agent_id, 1, evidence={})
    early["time"] = "0001-01-01T00:00:00-01:00"
    late = event(agent.agent_id, 2, evidence={})
    late["time"] = "9999-12-31T23:59:59+01:00"
    response = post_events(client, agent, [early, late, edge])
    assert response.status_code == 200, response.text
    assert len(response.json()["accepted"]) == 3
    assert _count(db) == 3
