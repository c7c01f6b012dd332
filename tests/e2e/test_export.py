"""SIEM export end to end: a real collector over HTTPS, a real rsyslog over TLS, an HTTPS sink.

The collector sends to three outputs: rsyslog (``imtcp`` with the ``gtls``
driver, its certificate from a private CA) in ECS JSON and in CEF, and a
loopback HTTPS receiver in NDJSON. Events come in through the ingest API as
an agent sends them. rsyslog is stopped while more events come in, the
collector is restarted meanwhile, rsyslog comes back: every event arrives at
every output, in order per agent, none twice.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import Collector, agent_headers, batch_body, synthetic_events, wait_until
from tests.export_receivers import NdjsonReceiver, TlsRsyslog, ndjson_receiver

pytestmark = pytest.mark.e2e

OUTPUTS = ("rsyslog-ecs", "rsyslog-cef", "https")


@pytest.fixture
def rsyslog(tmp_path: Path) -> Iterator[TlsRsyslog]:
    if shutil.which("rsyslogd") is None or not Path(
            "/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so").exists():
        reason = "needs rsyslogd with the gtls driver (Debian packages rsyslog, rsyslog-gnutls)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    receiver = TlsRsyslog(tmp_path / "rsyslog")
    receiver.start()
    yield receiver
    receiver.stop()


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[NdjsonReceiver]:
    with ndjson_receiver(tmp_path / "sink") as receiver:
        yield receiver


def export_config(path: Path, rsyslog: TlsRsyslog, sink: NdjsonReceiver) -> Path:
    fast = ("batch_size = 40\npoll_interval_s = 0.2\nretry_initial_s = 0.2\n"
            "retry_max_s = 1.0\ntimeout_s = 5\n")
    path.write_text(
        f'[[export.outputs]]\nname = "rsyslog-ecs"\ntype = "syslog-tls"\nformat = "ecs"\n'
        f'host = "127.0.0.1"\nport = {rsyslog.port}\nserver_name = "localhost"\n'
        f'ca_file = "{rsyslog.tls.ca_cert}"\n{fast}'
        f'[[export.outputs]]\nname = "rsyslog-cef"\ntype = "syslog-tls"\nformat = "cef"\n'
        f'host = "127.0.0.1"\nport = {rsyslog.port}\nca_file = "{rsyslog.tls.ca_cert}"\n'
        f'alert_changes = false\n{fast}'
        f'[[export.outputs]]\nname = "https"\ntype = "https-ndjson"\nurl = "{sink.url}"\n'
        f'ca_file = "{sink.tls.ca_cert}"\n{fast}'
    )
    return path


@pytest.fixture
def exporting(tmp_path: Path, database_url: str, rsyslog: TlsRsyslog,
              sink: NdjsonReceiver) -> Iterator[Collector]:
    instance = Collector(home=tmp_path, database_url=database_url)
    instance.extra_env["COURTGUARD_COLLECTOR_CONFIG"] = str(
        export_config(tmp_path / "collector.toml", rsyslog, sink))
    instance.init()
    instance.start()
    yield instance
    instance.stop()


def enroll(collector: Collector, hostname: str) -> dict[str, Any]:
    token = collector.create_token()
    with collector.http() as client:
        response = client.post("/api/v1/enroll", json={
            "token": token, "hostname": hostname, "agent_version": "0.1.0"})
    assert response.status_code == 201, response.text
    return dict(response.json())


def send(collector: Collector, credentials: dict[str, Any], first_seq: int, count: int,
         host: str) -> list[str]:
    """One agent's batch through the ingest API; the ids sent, in order."""
    events = synthetic_events(credentials["agent_id"], first_seq, count, host=host)
    with collector.http() as client:
        response = client.post("/api/v1/events", content=batch_body(credentials["agent_id"],
                                                                     events),
                               headers=agent_headers(credentials))
    assert response.status_code == 200, response.text
    return [e["id"] for e in events]


def rsyslog_ids(rsyslog: TlsRsyslog, fmt: str) -> list[tuple[str, str, int]]:
    """(agent id, event id, seq) of each agent.test event rsyslog wrote, in file order."""
    seen = []
    for line in rsyslog.lines():
        if line.msgid != "agent.test":
            continue
        if fmt == "ecs" and line.msg.startswith("{"):
            doc = line.json()
            seen.append((doc["agent"]["id"], doc["event"]["id"], doc["event"]["sequence"]))
        elif fmt == "cef" and line.msg.startswith("CEF:0|"):
            ext = dict(part.split("=", 1) for part in line.msg.split("|", 7)[7].split(" ")
                       if "=" in part and part.split("=", 1)[0].isalnum())
            seen.append((ext["deviceExternalId"], ext["externalId"], int(ext["cn1"])))
    return seen


def sink_ids(sink: NdjsonReceiver) -> list[tuple[str, str, int]]:
    return [(d["agent"]["id"], d["event"]["id"], d["event"]["sequence"])
            for d in sink.received() if d["event"]["action"] == "agent.test"]


def in_order_once(seen: list[tuple[str, str, int]], expected: dict[str, list[str]]) -> None:
    ids = [event_id for _, event_id, _ in seen]
    assert len(ids) == len(set(ids)), "an event arrived twice"
    for agent_id, sent in expected.items():
        assert [event_id for who, event_id, _ in seen if who == agent_id] == sent
        seqs = [seq for who, _, seq in seen if who == agent_id]
        assert seqs == sorted(seqs)


# SQLite only: the exporter's PostgreSQL paths (lease, row id gaps) run against a real
# PostgreSQL in tests/collector/export/test_exporter.py, and one collector start is
# most of this test's time.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_event_reaches_every_output_across_outages_and_restarts(
    exporting: Collector, rsyslog: TlsRsyslog, sink: NdjsonReceiver,
) -> None:
    collector = exporting
    agents = {"ws-a": enroll(collector, "ws-a"), "ws-b": enroll(collector, "ws-b")}
    expected: dict[str, list[str]] = {a["agent_id"]: [] for a in agents.values()}
    seqs = dict.fromkeys(agents, 1)

    def ingest(count: int) -> None:
        for host, credentials in agents.items():
            expected[credentials["agent_id"]] += send(collector, credentials, seqs[host],
                                                      count, host)
            seqs[host] += count

    def total() -> int:
        return sum(len(ids) for ids in expected.values())

    def all_arrived() -> bool:
        return (len(rsyslog_ids(rsyslog, "ecs")) >= total()
                and len(rsyslog_ids(rsyslog, "cef")) >= total()
                and len(sink_ids(sink)) >= total())

    ingest(50)
    wait_until(all_arrived, 30, "the first events at every output")

    # The SIEM relay goes away; ingest goes on, the HTTPS output goes on, syslog waits.
    rsyslog.stop()
    ingest(30)
    wait_until(lambda: len(sink_ids(sink)) >= total(), 30, "the HTTPS output meanwhile")
    wait_until(lambda: all(row[0] > 0 for row in collector.query(
        "SELECT failed FROM export_cursors WHERE name LIKE 'rsyslog-%'")) and len(
        collector.query("SELECT 1 FROM export_cursors WHERE name LIKE 'rsyslog-%'")) == 2,
        30, "failed sends to the stopped rsyslog")
    status = collector.cli("export", "status").stdout
    assert "rsyslog-ecs" in status and "last error" in status and "拒绝连接" in status

    # The collector restarts while rsyslog is still down; more events come in.
    collector.stop()
    collector.start()
    ingest(20)
    rsyslog.start()
    wait_until(all_arrived, 60, "every event after rsyslog came back")

    for fmt in ("ecs", "cef"):
        in_order_once(rsyslog_ids(rsyslog, fmt), expected)
    # The RFC 5424 header as rsyslog parsed it: MSGID the kind, HOSTNAME the workstation,
    # severity 5 (notice) for low events.
    tests = [line for line in rsyslog.lines() if line.msgid == "agent.test"]
    assert {line.hostname for line in tests} == set(agents)
    assert {line.severity for line in tests} == {5}
    in_order_once(sink_ids(sink), expected)
    alerts = [d for d in sink.received() if d["event"]["dataset"] == "courtguard.alert"]
    assert alerts and alerts[0]["event"]["action"] == "alert.opened"

    with collector.http() as client:
        metrics = client.get(
            "/metrics", headers={"Authorization": f"Bearer {collector.admin_key}"}).text
    for name in OUTPUTS:
        assert f'courtguard_export_lag_seconds{{output="{name}"}}' in metrics
    assert 'courtguard_export_sent_total{output="https",record="event"}' in metrics
    rows = {row[0]: row[1] for row in collector.query(
        "SELECT name, event_cursor FROM export_cursors")}
    newest = collector.query("SELECT max(pk) FROM events")[0][0]
    assert set(rows) == set(OUTPUTS)
    assert newest >= total() and min(rows.values()) > 0
