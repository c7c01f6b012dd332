"""SIEM export: ingest rate with no outputs against two outputs, and each output's throughput.

In one run, per backend: a collector with no outputs takes pre-built gzip
batches over HTTPS for ``--seconds`` (the floor); a fresh one with two
outputs whose receivers are down (connections refused) takes the same load;
then a fresh collector with two outputs enabled, syslog over TLS in ECS JSON to a private rsyslogd
(``imtcp`` + ``gtls``) and NDJSON over HTTPS to a loopback receiver, takes
the same load. Last, the floor is measured again (the load of a shared machine drifts).
Prints the ingest rates and their ratios to the mean floor, then, per output,
how many events it had passed when ingest stopped and how long it took to
catch up, as events per second from the first event stored to the last one
sent. Outputs run unpaced here (``rate_per_s`` 1,000,000), so the figure is
what the exporter and receiver can do, not the configured pace. It never
fails on a figure.

    .venv/bin/python bench/export.py [--seconds 15] [--backends sqlite,postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ingest import build_batches, enroll_agents, send_all
from tests.e2e.harness import Collector, free_port
from tests.export_receivers import ndjson_receiver, private_ca, tls_rsyslog
from tests.postgres import DEFAULT_PG_URL, postgres_database

RUNS = ("none", "down", "two", "none-after")


def outputs_toml(path: Path, syslog_port: int, syslog_ca: Path, https_url: str,
                 https_ca: Path, batch: int) -> Path:
    unpaced = (f"batch_size = {batch}\nrate_per_s = 1000000\nburst = 1000000\n"
               "poll_interval_s = 0.2\nretry_initial_s = 0.2\nretry_max_s = 2\n")
    path.write_text(
        f'[[export.outputs]]\nname = "syslog-ecs"\ntype = "syslog-tls"\nformat = "ecs"\n'
        f'host = "127.0.0.1"\nport = {syslog_port}\nca_file = "{syslog_ca}"\n{unpaced}'
        f'[[export.outputs]]\nname = "https-ndjson"\ntype = "https-ndjson"\nurl = "{https_url}"\n'
        f'ca_file = "{https_ca}"\n{unpaced}'
    )
    return path


def ingest(collector: Collector, args: argparse.Namespace) -> tuple[float, float, int]:
    """Load the collector for ``--seconds``; (rate, start time, events accepted)."""
    agents = enroll_agents(collector, args.agents)
    batches = build_batches(agents, args.batch, int(args.seconds * args.max_rate))
    started = time.monotonic()
    accepted, _latencies, elapsed = asyncio.run(
        send_all(collector, batches, args.concurrency, args.seconds))
    return accepted / elapsed, started, accepted


def ingest_alone(home: Path, database_url: str, args: argparse.Namespace,
                 config: Path | None = None) -> float:
    collector = Collector(home=home, database_url=database_url)
    if config is not None:
        collector.extra_env["COURTGUARD_COLLECTOR_CONFIG"] = str(config)
    collector.init()
    collector.start()
    try:
        rate, _, _ = ingest(collector, args)
    finally:
        collector.stop()
    return rate


def run_backend(name: str, url_for: dict[str, str], args: argparse.Namespace,
                home: Path) -> None:
    rate_none = ingest_alone(home / "none", url_for["none"], args)
    # Both receivers down: connections refused, the outputs back off; ingest must not notice.
    tls = private_ca(home / "down-tls")
    down = outputs_toml(home / "down.toml", free_port(), tls.ca_cert,
                        f"https://127.0.0.1:{free_port()}/ingest", tls.ca_cert, args.export_batch)
    rate_down = ingest_alone(home / "down", url_for["down"], args, down)
    with tls_rsyslog(home / "rsyslog") as rsyslog, ndjson_receiver(home / "sink") as sink:
        collector = Collector(home=home / "two", database_url=url_for["two"])
        collector.extra_env["COURTGUARD_COLLECTOR_CONFIG"] = str(outputs_toml(
            home / "two.toml", rsyslog.port, rsyslog.tls.ca_cert, sink.url, sink.tls.ca_cert,
            args.export_batch))
        collector.init()
        collector.start()
        try:
            rate_two, started, _ = ingest(collector, args)
            ingest_end = time.monotonic()
            newest = collector.query("SELECT max(pk) FROM events")[0][0]
            total = collector.query("SELECT count(*) FROM events")[0][0]
            at_end = {row[0]: row[1] for row in collector.query(
                "SELECT name, event_cursor FROM export_cursors")}
            done: dict[str, float] = {}
            deadline = time.monotonic() + args.catch_up_limit
            while len(done) < 2 and time.monotonic() < deadline:
                for output, cursor in collector.query(
                        "SELECT name, event_cursor FROM export_cursors"):
                    if cursor >= newest and output not in done:
                        done[output] = time.monotonic()
                time.sleep(0.2)
        finally:
            collector.stop()
    # The floor again at the end: on a shared machine the load drifts during a run.
    rate_none_after = ingest_alone(home / "none-after", url_for["none-after"], args)
    floor = (rate_none + rate_none_after) / 2
    print(f"{name:9s} ingest with no outputs {rate_none:.0f} events/s before, "
          f"{rate_none_after:.0f} after (floor {floor:.0f}); with two outputs {rate_two:.0f} "
          f"(ratio {rate_two / floor:.2f}); with both receivers down {rate_down:.0f} "
          f"(ratio {rate_down / floor:.2f})", flush=True)
    for output in ("syslog-ecs", "https-ndjson"):
        passed = at_end.get(output, 0)
        if output in done:
            throughput = total / (done[output] - started)
            print(f"{name:9s}   {output:12s} {throughput:8.0f} events/s export "
                  f"({throughput / rate_two:.2f} of the ingest rate); at ingest end "
                  f"{passed}/{newest} passed, caught up {done[output] - ingest_end:.1f} s later",
                  flush=True)
        else:
            print(f"{name:9s}   {output:12s} not caught up within {args.catch_up_limit:.0f} s "
                  f"({passed}/{newest} passed at ingest end)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--backends", default="sqlite")
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--export-batch", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--max-rate", type=float, default=20000, help="events/s to pre-build for")
    parser.add_argument("--catch-up-limit", type=float, default=300)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    args = parser.parse_args()
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, "
          f"{os.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory(prefix="cg-bench-export-") as tmp, ExitStack() as stack:
        for backend in args.backends.split(","):
            home = Path(tmp) / backend
            home.mkdir()
            if backend == "sqlite":
                urls = {run: f"sqlite:///{home / f'{run}.db'}" for run in RUNS}
            else:
                urls = {run: stack.enter_context(postgres_database(args.pg_url))
                        for run in RUNS}
            run_backend(backend, urls, args, home)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)


if __name__ == "__main__":
    main()
