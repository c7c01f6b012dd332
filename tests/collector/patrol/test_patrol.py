# ruff: noqa: E501  (judgment text reads best on one line)
"""The patrol of published documents against a real HTTPS mirror and a real store.

A local HTTPS server, its certificate from a private CA the patrol is told to
trust, serves a court's mirror: an HTML index with a sub-listing per year
(the server's own directory pages) and a JSON listing carrying ETags. Between
passes documents are published, corrected and withdrawn, the patrol is
restarted (a new patrol over a new connection to the same store), and the
server counts what it sends. The documents are checked by the collector's
own worker pool (``DocumentChecker``) with the project's documents policy.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import ssl
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from collector.api.documents import DocumentChecker
from collector.patrol.runner import DocumentPatrol, PassSummary
from collector.patrol.settings import PatrolSettings, PatrolSource
from collector.settings import CollectorSettings
from collector.store import migrate
from collector.store.database import Database
from collector.store.tables import alerts, events
from collector.tls import TLSFiles, ensure_tls
from tests.collector.conftest import POLICIES

HEAD = "北京市朝阳区人民法院\n民事判决书\n(2024)京0105民初{n}号\n原告赵某，男。\n被告钱某，女。\n原告赵某与被告钱某买卖合同纠纷一案。\n"
CLEAN = HEAD + "审判员  孙立\n"
PHONE = HEAD + "被告钱某的手机号码13812345678。\n审判员  孙立\n"
IDENTITY = HEAD + "被告钱某，公民身份号码110101199003074514。\n审判员  孙立\n"
MEDIATION = "北京市朝阳区人民法院\n民事调解书\n(2024)京0105民初2号\n原告赵某与被告钱某借款合同纠纷一案。\n"
RAW = ("13812345678", "110101199003074514")


@dataclass
class Mirror:
    """The court's mirror: files under ``root``, served over HTTPS; every answer counted."""

    root: Path
    tls_dir: Path
    sent: list[tuple[str, int]] = field(default_factory=list)
    listing_fails: bool = False

    def __post_init__(self) -> None:
        mirror = self

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(mirror.root), **kwargs)

            def log_message(self, *_args: Any) -> None:
                pass

            def log_request(self, code: Any = "-", size: Any = "-") -> None:
                mirror.sent.append((self.path, int(code)))

            def send_head(self) -> Any:
                path = Path(self.translate_path(self.path))
                if mirror.listing_fails and (path.is_dir() or path.suffix == ".json"):
                    self.send_error(503)
                    return None
                # The JSON side of the mirror sends ETags; the HTML side Last-Modified only.
                self._etag = None
                if path.is_file() and "/json/" in self.path:
                    self._etag = '"' + hashlib.sha256(path.read_bytes()).hexdigest()[:16] + '"'
                    if self.headers.get("If-None-Match") == self._etag:
                        self.send_response(304)
                        self.end_headers()
                        return None
                return super().send_head()

            def end_headers(self) -> None:
                if getattr(self, "_etag", None):
                    self.send_header("ETag", self._etag)
                super().end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ensure_tls(self.tls_dir)
        files = TLSFiles.in_dir(self.tls_dir)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(files.server_cert, files.server_key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.ca_file = files.ca_cert
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"https://{host}:{port}"

    def downloads(self) -> Counter[str]:
        """Documents sent in full (200), by path; listings excluded."""
        return Counter(p for p, code in self.sent if code == 200 and not p.endswith(("/", ".json")))

    def write(self, relative: str, text: str, tick: int) -> None:
        """Publish or change a document; ``tick`` moves its time on (Last-Modified has seconds)."""
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        stamp = 1_700_000_000 + tick * 100
        os.utime(path, (stamp, stamp))

    def json_listing(self, names: list[str]) -> None:
        listing = {"documents": [{"url": name} for name in names]}
        (self.root / "json" / "listing.json").write_text(json.dumps(listing, ensure_ascii=False))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def checker() -> Iterator[DocumentChecker]:
    documents = DocumentChecker(POLICIES, workers=1)
    yield documents
    documents.close(wait=True)


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[Mirror]:
    served = Mirror(tmp_path / "mirror", tmp_path / "tls")
    yield served
    served.close()


def sqlite_url(tmp_path: Path) -> str:
    """For tests of the patrol's logic; the store backends are covered by the first test."""
    return f"sqlite:///{tmp_path / 'collector.db'}"


def open_store(database_url: str, tmp_path: Path) -> Database:
    db = Database.from_settings(CollectorSettings(data_dir=tmp_path / "data",
                                                  database_url=database_url))
    migrate.upgrade(db)
    return db


def patrol_alerts(db: Database) -> list[dict[str, Any]]:
    with db.read() as conn:
        rows = conn.execute(
            sa.select(alerts.c.id, alerts.c.status, alerts.c.count, alerts.c.severity,
                      alerts.c.resolution, alerts.c.resolution_comment, alerts.c.title)
            .where(alerts.c.kind == "collector.document_published").order_by(alerts.c.id)
        ).mappings().all()
    return [dict(row) for row in rows]


def patrol_events(db: Database) -> list[dict[str, Any]]:
    with db.read() as conn:
        rows = conn.execute(
            sa.select(events.c.summary, events.c.evidence, events.c.severity)
            .where(events.c.kind == "collector.document_published").order_by(events.c.pk)
        ).mappings().all()
    return [dict(row) for row in rows]


def document_of(alert: dict[str, Any]) -> str:
    """The document an alert's title names (the event's summary)."""
    return str(alert["title"]).split("：", 1)[1].split("（", 1)[0]


def run(patrol: DocumentPatrol) -> PassSummary:
    return asyncio.run(patrol.run_pass())


def test_patrol_alerts_once_per_document_and_closes_when_fixed_or_withdrawn(
    mirror: Mirror, checker: DocumentChecker, database_url: str, tmp_path: Path
) -> None:
    mirror.write("wenshu/2024/clean.txt", CLEAN.format(n=1), tick=1)
    mirror.write("wenshu/2024/phone.txt", PHONE.format(n=2), tick=1)
    mirror.write("wenshu/2023/mediation.txt", MEDIATION, tick=1)
    mirror.write("json/a.txt", CLEAN.format(n=3), tick=1)
    mirror.write("json/b.txt", IDENTITY.format(n=4), tick=1)
    mirror.json_listing(["a.txt", "b.txt", "https://203.0.113.9/json/elsewhere.txt"])
    settings = PatrolSettings(
        enabled=True, request_interval_s=0.01, timeout_s=10,
        sources=[
            PatrolSource(name="mirror-html", url=f"{mirror.base}/wenshu/", ca_file=mirror.ca_file),
            PatrolSource(name="mirror-json", url=f"{mirror.base}/json/listing.json",
                         ca_file=mirror.ca_file),
        ],
    )
    db = open_store(database_url, tmp_path)
    first = run(DocumentPatrol(db, checker, settings, 1 << 20))
    assert first.errors == [] and (first.listed, first.checked, first.alerted) == (5, 5, 3)
    assert mirror.downloads() == Counter({"/wenshu/2024/clean.txt": 1, "/wenshu/2024/phone.txt": 1,
                                          "/wenshu/2023/mediation.txt": 1, "/json/a.txt": 1,
                                          "/json/b.txt": 1})
    opened = patrol_alerts(db)
    assert [a["status"] for a in opened] == ["new"] * 3
    recorded = patrol_events(db)
    by_document = {e["evidence"]["document"]: e for e in recorded}
    assert set(by_document) == {"/wenshu/2024/phone.txt", "/wenshu/2023/mediation.txt", "/json/b.txt"}
    mediation = by_document["/wenshu/2023/mediation.txt"]["evidence"]
    assert mediation["recommendation"] == "withdraw" and mediation["rules"] == ["documents.mediation"]
    phone = by_document["/wenshu/2024/phone.txt"]
    assert phone["evidence"]["recommendation"] == "correct" and phone["summary"].startswith("已公开文书应更正")
    stored = json.dumps(recorded, ensure_ascii=False, default=str)
    assert not any(raw in stored for raw in RAW), "raw personal data in an event"

    # A restart (new patrol, new store connection) with nothing changed: nothing downloaded
    # again, nothing raised again. Then a mirror whose listings fail: nothing taken for withdrawn.
    db.dispose()
    db = open_store(database_url, tmp_path)
    restarted = DocumentPatrol(db, checker, settings, 1 << 20)
    again = run(restarted)
    assert (again.listed, again.unchanged, again.downloaded, again.alerted) == (5, 5, 0, 0)
    mirror.listing_fails = True
    broken = run(restarted)
    assert len(broken.errors) == 2 and broken.closed == 0 and broken.gone == 0
    mirror.listing_fails = False
    assert sum(mirror.downloads().values()) == 5
    assert [(a["status"], a["count"]) for a in patrol_alerts(db)] == [("new", 1)] * 3

    # Corrected, withdrawn, newly published, and a changed document that is still a problem.
    mirror.write("wenshu/2024/phone.txt", CLEAN.format(n=2), tick=2)
    (mirror.root / "wenshu/2023/mediation.txt").unlink()
    mirror.write("wenshu/2024/late.txt", PHONE.format(n=5), tick=2)
    mirror.write("json/b.txt", IDENTITY.format(n=6), tick=2)
    mirror.json_listing(["a.txt", "b.txt"])
    third = run(restarted)
    assert (third.downloaded, third.alerted, third.closed, third.gone) == (3, 2, 2, 1)
    assert mirror.downloads()["/wenshu/2024/clean.txt"] == 1 and mirror.downloads()["/json/a.txt"] == 1
    after = {document_of(a): a for a in patrol_alerts(db)}
    assert set(after) == {"/wenshu/2024/phone.txt", "/wenshu/2023/mediation.txt", "/json/b.txt",
                          "/wenshu/2024/late.txt"}
    corrected, withdrawn = after["/wenshu/2024/phone.txt"], after["/wenshu/2023/mediation.txt"]
    assert (corrected["status"], corrected["resolution"]) == ("closed", "true_positive")
    assert "已更正" in corrected["resolution_comment"]
    assert withdrawn["status"] == "closed" and "撤下" in withdrawn["resolution_comment"]
    assert (after["/json/b.txt"]["status"], after["/json/b.txt"]["count"]) == ("new", 2)
    assert after["/wenshu/2024/late.txt"]["status"] == "new"

    # And once more: a quiet pass changes nothing.
    quiet = run(DocumentPatrol(db, checker, settings, 1 << 20))
    assert (quiet.downloaded, quiet.alerted, quiet.closed) == (0, 0, 0)
    assert len(patrol_alerts(db)) == 4
    db.dispose()


def test_directory_source_reads_only_what_changed(
    checker: DocumentChecker, tmp_path: Path
) -> None:
    export = tmp_path / "export"
    (export / "2024").mkdir(parents=True)
    (export / "2024" / "a.txt").write_text(PHONE.format(n=7))
    (export / "2024" / "~$lock.docx").write_bytes(b"x")
    (export / "清单.xlsx").write_bytes(b"x")
    settings = PatrolSettings(enabled=True, sources=[PatrolSource(name="export", directory=export)])
    db = open_store(sqlite_url(tmp_path), tmp_path)
    first = run(DocumentPatrol(db, checker, settings, 1 << 20))
    assert (first.listed, first.downloaded, first.alerted) == (1, 1, 1)
    second = run(DocumentPatrol(db, checker, settings, 1 << 20))
    assert (second.unchanged, second.downloaded) == (1, 0)
    (export / "2024" / "a.txt").write_text(CLEAN.format(n=7))
    os.utime(export / "2024" / "a.txt", ns=(1_800_000_000 * 10**9, 1_800_000_000 * 10**9))
    third = run(DocumentPatrol(db, checker, settings, 1 << 20))
    assert (third.downloaded, third.closed) == (1, 1)
    assert [a["status"] for a in patrol_alerts(db)] == ["closed"]
    db.dispose()


def test_an_untrusted_mirror_is_refused(
    mirror: Mirror, checker: DocumentChecker, tmp_path: Path
) -> None:
    mirror.write("wenshu/a.txt", PHONE.format(n=8), tick=1)
    settings = PatrolSettings(enabled=True, sources=[PatrolSource(name="m", url=f"{mirror.base}/wenshu/")])
    db = open_store(sqlite_url(tmp_path), tmp_path)
    summary = run(DocumentPatrol(db, checker, settings, 1 << 20))
    assert summary.listed == 0 and len(summary.errors) == 1 and "无法读取清单" in summary.errors[0]
    assert patrol_alerts(db) == []
    db.dispose()


def test_max_documents_leaves_the_rest_for_the_next_pass(
    checker: DocumentChecker, tmp_path: Path
) -> None:
    export = tmp_path / "export"
    export.mkdir()
    for n in range(3):
        (export / f"{n}.txt").write_text(CLEAN.format(n=n))
    settings = PatrolSettings(enabled=True, max_documents=2,
                              sources=[PatrolSource(name="export", directory=export)])
    db = open_store(sqlite_url(tmp_path), tmp_path)
    first = run(DocumentPatrol(db, checker, settings, 1 << 20))
    second = run(DocumentPatrol(db, checker, settings, 1 << 20))
    assert (first.listed, first.downloaded, first.gone) == (3, 2, 0)
    assert (second.downloaded, second.unchanged, second.gone) == (1, 2, 0)
    db.dispose()


def test_the_collector_runs_the_patrol_when_enabled(tmp_path: Path) -> None:
    """The wiring: ``serve``'s app starts the patrol (the store backends are covered above)."""
    import time

    from collector.app import create_app
    from tests.collector.conftest import TestClient

    export = tmp_path / "export"
    export.mkdir()
    (export / "a.txt").write_text(PHONE.format(n=9))
    database_url = sqlite_url(tmp_path)
    settings = CollectorSettings(
        data_dir=tmp_path / "data", database_url=database_url, tls=False, policy_dir=POLICIES,
        silent_check_interval_s=3600, document_workers=1,
        patrol=PatrolSettings(enabled=True, interval_s=1,
                              sources=[PatrolSource(name="export", directory=export)]),
    )
    db = open_store(database_url, tmp_path)
    with TestClient(create_app(settings, db)):
        deadline = time.monotonic() + 90
        while not patrol_alerts(db) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [a["status"] for a in patrol_alerts(db)] == ["new"]


def test_a_broken_listing_is_a_clear_error_and_closes_nothing(
    mirror: Mirror, checker: DocumentChecker, tmp_path: Path
) -> None:
    mirror.write("json/a.txt", PHONE.format(n=10), tick=1)
    mirror.json_listing(["a.txt"])
    settings = PatrolSettings(enabled=True, request_interval_s=0, sources=[
        PatrolSource(name="j", url=f"{mirror.base}/json/listing.json", ca_file=mirror.ca_file)])
    db = open_store(sqlite_url(tmp_path), tmp_path)
    assert run(DocumentPatrol(db, checker, settings, 1 << 20)).alerted == 1
    (mirror.root / "json" / "listing.json").write_text("<html>not the listing</html>")
    broken = run(DocumentPatrol(db, checker, settings, 1 << 20))
    assert len(broken.errors) == 1 and "不是有效的 JSON" in broken.errors[0]
    (mirror.root / "json" / "listing.json").write_text('{"documents": 5}')
    wrong = run(DocumentPatrol(db, checker, settings, 1 << 20))
    assert "documents 列表" in wrong.errors[0] and (wrong.gone, wrong.closed) == (0, 0)
    assert [a["status"] for a in patrol_alerts(db)] == ["new"]
    db.dispose()
