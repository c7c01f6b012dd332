"""The floor of ``bench/ingest.py``: the least a FastAPI + pydantic service can do per batch.

It takes what the collector takes (a gzip JSON batch of events on
``POST /api/v1/events`` over HTTPS, uvicorn, one process), validates it with a
plain pydantic model (the event's fields, evidence as any JSON object),
writes the same rows the collector writes into the same ``events`` table with
one ``INSERT ... ON CONFLICT DO NOTHING`` per batch, commits, and answers the
ids. No authentication, no typed evidence, no gaps, agents or alerts: what is
left is the stack's own cost, which is what the collector is measured against.

    python bench/ingest_floor.py --database sqlite:///PATH|postgresql://... \
        --port N --certfile cert.pem --keyfile key.pem
"""

from __future__ import annotations

import argparse
import gzip
import queue
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel
from starlette.concurrency import run_in_threadpool

_SEVERITY_RANK = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
_COLUMNS = ("id", "agent_id", "seq", "time", "received_at", "host", "kind", "severity",
            "rule_id", "policy_version", "summary", "account", "evidence")


class FloorEvent(BaseModel):
    id: uuid.UUID
    seq: int
    time: AwareDatetime
    agent_id: uuid.UUID
    host: str
    kind: str
    severity: str
    rule_id: str | None = None
    policy_version: str | None = None
    summary: str
    evidence: dict[str, Any] = {}


class FloorBatch(BaseModel):
    agent_id: uuid.UUID
    sent_at: AwareDatetime
    events: list[FloorEvent]


class SqliteStore:
    """One WAL connection, as the collector's SQLite writer: one writer at a time."""

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")  # the collector's default
        self.lock = threading.Lock()
        placeholders = ",".join("?" * len(_COLUMNS))
        self.sql = (f"INSERT INTO events ({', '.join(_COLUMNS)}) VALUES ({placeholders}) "  # noqa: S608 (constant names)
                    "ON CONFLICT DO NOTHING")

    def when(self, value: datetime) -> Any:
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                self.conn.executemany(self.sql, rows)
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")


class PostgresStore:
    """A few psycopg connections, one per concurrent batch."""

    def __init__(self, url: str, connections: int = 4) -> None:
        import psycopg

        self.pool: queue.Queue[Any] = queue.Queue()
        for _ in range(connections):
            self.pool.put(psycopg.connect(url))
        values = ",".join(["%s"] * (len(_COLUMNS) - 1)) + ",%s::jsonb"
        self.sql = (f"INSERT INTO events ({', '.join(_COLUMNS)}) VALUES ({values}) "  # noqa: S608 (constant names)
                    "ON CONFLICT DO NOTHING")

    def when(self, value: datetime) -> Any:
        return value

    @contextmanager
    def connection(self) -> Iterator[Any]:
        conn = self.pool.get()
        try:
            yield conn
        finally:
            self.pool.put(conn)

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        with self.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            cursor.executemany(self.sql, rows)


def make_app(store: SqliteStore | PostgresStore) -> FastAPI:
    app = FastAPI()

    def store_batch(body: bytes, encoding: str | None) -> bytes:
        raw = gzip.decompress(body) if encoding == "gzip" else body
        batch = FloorBatch.model_validate_json(raw)
        received = store.when(datetime.now(UTC))
        rows = []
        for e in batch.events:
            account = e.evidence.get("account")
            rows.append((
                str(e.id), str(e.agent_id), e.seq, store.when(e.time), received, e.host, e.kind,
                _SEVERITY_RANK[e.severity], e.rule_id, e.policy_version, e.summary,
                account if isinstance(account, str) and account else None,
                orjson.dumps(e.evidence).decode(),
            ))
        store.write(rows)
        return orjson.dumps({"accepted": [str(e.id) for e in batch.events], "duplicates": []})

    @app.post("/api/v1/events")
    async def ingest(request: Request) -> Response:
        body = await request.body()
        answer = await run_in_threadpool(
            store_batch, body, request.headers.get("content-encoding"))
        return Response(answer, media_type="application/json")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--certfile", required=True)
    parser.add_argument("--keyfile", required=True)
    args = parser.parse_args()
    if args.database.startswith("sqlite:///"):
        store: SqliteStore | PostgresStore = SqliteStore(args.database.removeprefix("sqlite:///"))
    else:
        store = PostgresStore(args.database.replace("postgresql+psycopg://", "postgresql://"))
    uvicorn.run(make_app(store), host="127.0.0.1", port=args.port, log_config=None,
                access_log=False, server_header=False, ssl_certfile=args.certfile,
                ssl_keyfile=args.keyfile)


if __name__ == "__main__":
    main()
