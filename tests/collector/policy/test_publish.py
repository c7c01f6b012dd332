"""Publishing a bundle: numbered, built, signed and stored in one transaction."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.policy.bundle import open_bundle, parse_bundle
from agent.policy.loader import load_policy_dir
from collector.policy.publish import publish_bundle
from collector.policy.signing import load_signing_key
from collector.settings import CollectorSettings
from collector.store.database import Database
from collector.store.policies import StoredBundle
from tests.collector.conftest import POLICIES

DOCUMENTS = load_policy_dir(POLICIES).documents
NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def publish(db: Database, data_dir: Path, group: str | None = None, note: str = "") -> StoredBundle:
    return publish_bundle(db, DOCUMENTS, load_signing_key(data_dir), group=group, author="tester",
                          note=note, created_at=NOW)


def test_publish_numbers_and_signs(db: Database, signing: Path) -> None:
    """Versions go 1, 2; each body verifies against the public key and says its version."""
    first, second = publish(db, signing), publish(db, signing, note="第二版")
    assert (first.version, second.version) == (1, 2)
    public = load_signing_key(signing).public_key.text
    bundle, policies = open_bundle(second.body, second.signature, public, group="x",
                                   applied_version=1)
    assert bundle.version == 2 and bundle.note == "第二版" and policies.version == "2"
    assert set(policies.documents) == set(DOCUMENTS)


def test_concurrent_publishers_get_distinct_versions(settings: CollectorSettings, db: Database,
                                                     signing: Path) -> None:
    """Two processes' worth of connections publishing at once never share a version."""
    other = Database.from_settings(settings)
    versions: list[int] = []
    errors: list[BaseException] = []

    def work(store: Database) -> None:
        try:
            for _ in range(10):
                versions.append(publish(store, signing).version)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(store,)) for store in (db, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    other.dispose()
    assert errors == []
    assert sorted(versions) == list(range(1, 21))


def test_bundle_is_canonical(db: Database, signing: Path) -> None:
    """The stored body is sorted, compact JSON: what the signature covers is reproducible."""
    stored = publish(db, signing)
    bundle = parse_bundle(stored.body)
    from agent.policy.bundle import canonical_bytes

    assert canonical_bytes(bundle.model_dump(mode="json")) == stored.body


def test_publish_refuses_only_collector_only_kinds(db: Database, signing: Path) -> None:
    """A bundle agents could not use at all is not signed; nothing is stored."""
    from collector.errors import CollectorError
    from collector.store.policies import latest_version

    with pytest.raises(CollectorError, match="alerting"):
        publish_bundle(db, {"alerting": DOCUMENTS["alerting"]}, load_signing_key(signing),
                       group=None, author="t", note="", created_at=NOW)
    assert latest_version(db) == 0


def test_publishers_racing_on_the_first_key_both_succeed(
    settings: CollectorSettings, db: Database, signing: Path
) -> None:
    """A publisher that found no key while another was inserting it still publishes."""
    import time

    from sqlalchemy import insert as sql_insert
    from sqlalchemy import select, text

    from agent.events import utcnow
    from collector.policy.signing import load_signing_key, register_public_key
    from collector.store.tables import policy_keys

    public = load_signing_key(signing).public_key.text
    other = Database.from_settings(settings)
    errors: list[BaseException] = []
    first = other.engine.connect()
    first.begin()
    first.execute(sql_insert(policy_keys).values(public_key=public, created_at=utcnow()))

    def second() -> None:
        try:
            register_public_key(db, public)  # reads no key yet, then waits on the first insert
        except BaseException as exc:  # reported below
            errors.append(exc)

    racer = threading.Thread(target=second)
    racer.start()
    if db.dialect == "postgresql":
        # Wait until the racer's insert is blocked behind the first one's uncommitted row.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and racer.is_alive():
            with other.engine.connect() as probe:
                if probe.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar():
                    break
            time.sleep(0.02)
    else:
        racer.join(timeout=1.0)  # SQLite: the racer waits for the write lock before it reads
    first.commit()
    first.close()
    racer.join()
    other.dispose()
    assert errors == []
    with db.read() as conn:
        assert conn.execute(select(policy_keys.c.public_key)).scalars().all() == [public]
