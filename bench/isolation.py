"""Host isolation costs: the ingest answer's hint, and judging an order on the agent.

1. Every ingest answer now asks ``IsolationHints.for_agent`` (cached map, the
   store's highest sequence read at most every ``policy_refresh_s``) besides
   ``PolicyCache.hint`` (the existing, cached policy hint: the floor). Both are
   timed over ``--rounds`` calls on a real SQLite store holding ``--agents``
   agents with one signed order each, and printed as a ratio to the floor.
2. ``open_order`` (verify, parse, judge) per algorithm, Ed25519 the floor.

It prints figures and never fails on one; quote ``uptime`` beside them.

    .venv/bin/python bench/isolation.py [--rounds 20000] [--agents 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa

from agent.isolation.order import build_order_bytes, open_order
from agent.signing import generate_signer
from collector.isolation.hints import IsolationHints
from collector.policy.serving import PolicyCache
from collector.settings import CollectorSettings
from collector.store import migrate
from collector.store.database import Database
from collector.store.tables import agents, host_isolations, isolation_orders


def seed(db: Database, count: int) -> list[str]:
    now = datetime.now(UTC)
    ids = [str(uuid.uuid4()) for _ in range(count)]
    with db.write() as conn:
        conn.execute(sa.insert(agents), [{"id": i, "hostname": f"ws-{n}", "group": "default",
                                          "enrolled_at": now, "secret_hash": "x" * 64}
                                         for n, i in enumerate(ids)])
        conn.execute(sa.insert(host_isolations), [{
            "id": n + 1, "agent_id": i, "state": "active", "minutes": 60, "reason": "bench",
            "requested_by": "bench", "requested_at": now, "expires_at": now + timedelta(hours=1)}
            for n, i in enumerate(ids)])
        conn.execute(sa.insert(isolation_orders), [{
            "order_id": str(uuid.uuid4()), "isolation_id": n + 1, "agent_id": i,
            "action": "isolate", "body": "{}", "signature": "x", "created_at": now}
            for n, i in enumerate(ids)])
    return ids


async def per_call_us(call: object, rounds: int) -> float:
    assert callable(call)
    await call()  # warm: the first call reads the store
    started = time.perf_counter()
    for _ in range(rounds):
        await call()
    return (time.perf_counter() - started) * 1e6 / rounds


async def hints(rounds: int, count: int) -> None:
    with tempfile.TemporaryDirectory() as work:
        settings = CollectorSettings(data_dir=Path(work), database_url=f"sqlite:///{work}/c.db")
        db = Database.from_settings(settings)
        migrate.upgrade(db)
        ids = seed(db, count)
        policy = PolicyCache(db, settings.policy_refresh_s)
        isolation = IsolationHints(db, settings.policy_refresh_s)
        floor = await per_call_us(lambda: policy.hint("default"), rounds)
        hint = await per_call_us(lambda: isolation.for_agent(ids[count // 2]), rounds)
        print(f"ingest hint, {count} agents with orders: policy hint (floor) {floor:.2f} us, "
              f"isolation hint {hint:.2f} us ({hint / floor:.2f}x floor)")
        db.dispose()


def orders(rounds: int) -> None:
    figures: dict[str, float] = {}
    agent_id = uuid.uuid4()
    now = datetime.now(UTC)
    for algorithm in ("ed25519", "sm2"):
        signer = generate_signer(algorithm)
        body = build_order_bytes(
            order_id=uuid.uuid4(), sequence=2, agent_id=agent_id, isolation_id=1,
            action="isolate", issued_at=now, expires_at=now + timedelta(hours=1),
            reason="bench", requested_by="a", approved_by="b",
            allow=["198.18.0.80/32"], resolvers=["198.18.0.53"])
        signature, key = signer.sign(body), signer.public_key.text

        def judge(b: bytes = body, s: str = signature, k: str = key) -> None:
            open_order(b, s, k, agent_id=agent_id, accepted_sequence=1, now=now)

        judge()
        started = time.perf_counter()
        for _ in range(rounds):
            judge()
        figures[algorithm] = (time.perf_counter() - started) * 1000 / rounds
    for algorithm, ms in figures.items():
        print(f"open_order {algorithm:8s} {ms:7.3f} ms ({ms / figures['ed25519']:5.1f}x Ed25519)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20000)
    parser.add_argument("--agents", type=int, default=2000)
    args = parser.parse_args()
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    asyncio.run(hints(args.rounds, args.agents))
    orders(max(args.rounds // 100, 20))


if __name__ == "__main__":
    main()
