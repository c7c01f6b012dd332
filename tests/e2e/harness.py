"""Real collector and agent processes for end-to-end tests and benchmarks.

Each process runs from this checkout's virtualenv with its settings in
environment variables, its state in a temporary directory, and talks only to
127.0.0.1 on a free port.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
POLICIES = REPO / "policies"

#: How much faster than the product an agent under test beats, batches and retries, so a
#: test waits seconds, not minutes. Benchmarks put the product's defaults back
#: (``product_pacing``): a figure measured at test pacing is not the product's.
TEST_PACING: dict[str, str] = {
    "heartbeat_interval_s": "1",
    "batch_max_age_s": "0.2",
    "backoff_initial_s": "0.2",
    "backoff_max_s": "1",
    "drain_rate_eps": "100000",
    "drain_start_jitter_s": "0",
}


def product_pacing() -> dict[str, str]:
    """The shipped defaults of every setting ``TEST_PACING`` changes."""
    from agent.settings import AgentSettings

    return {name: str(AgentSettings.model_fields[name].default) for name in TEST_PACING}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.1) -> Any:
    """Poll until ``predicate`` returns something truthy; fail the test naming ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def in_netns(netns: str | None, call: Callable[[], Any]) -> Any:
    """Run ``call`` with its sockets in network namespace ``netns`` (None: here).

    setns(2) changes only the calling thread's namespace, so the call runs in
    a thread of its own that enters the namespace first.
    """
    if netns is None:
        return call()
    import ctypes
    import threading

    outcome: dict[str, Any] = {}

    def enter_and_call() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            with open(f"/run/netns/{netns}") as handle:
                if libc.setns(handle.fileno(), 0x40000000) != 0:  # CLONE_NEWNET
                    raise OSError(ctypes.get_errno(), f"setns into {netns} failed")
            outcome["value"] = call()
        except BaseException as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=enter_and_call)
    worker.start()
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def netns_prefix(netns: str | None) -> list[str]:
    return ["ip", "netns", "exec", netns] if netns else []


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURTGUARD_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Collector:
    """One ``courtguard-collector serve`` process with its own data dir."""

    home: Path
    database_url: str
    tls: bool = True
    port: int = field(default_factory=free_port)
    #: Run inside this network namespace, listening on ``listen_host`` there.
    netns: str | None = None
    listen_host: str = "127.0.0.1"
    extra_env: dict[str, str] = field(default_factory=dict)
    admin_key: str = ""
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def data_dir(self) -> Path:
        return self.home / "collector"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.listen_host}:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.data_dir / "tls" / "ca.pem"

    @property
    def log_file(self) -> Path:
        return self.home / "collector.log"

    def env(self) -> dict[str, str]:
        env = _base_env()
        env.update(
            {
                "COURTGUARD_COLLECTOR_DATA_DIR": str(self.data_dir),
                "COURTGUARD_COLLECTOR_DATABASE_URL": self.database_url,
                "COURTGUARD_COLLECTOR_LISTEN_HOST": self.listen_host,
                "COURTGUARD_COLLECTOR_LISTEN_PORT": str(self.port),
                "COURTGUARD_COLLECTOR_TLS": "true" if self.tls else "false",
                "COURTGUARD_COLLECTOR_POLICY_DIR": str(POLICIES),
                "COURTGUARD_COLLECTOR_LOG_FORMAT": "json",
            }
        )
        env.update(self.extra_env)
        return env

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*netns_prefix(self.netns), str(BIN / "courtguard-collector"), *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=check,
        )

    def init(self) -> None:
        sans = ["--san", self.listen_host] if self.listen_host != "127.0.0.1" else []
        result = self.cli("init", "--print-key-only", *sans)
        self.admin_key = result.stdout.strip().splitlines()[-1]

    def start(self) -> None:
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [*netns_prefix(self.netns), str(BIN / "courtguard-collector"), "serve"],
                env=self.env(),
                stdout=log,
                stderr=log,
            )
        self.starts += 1
        wait_until(self._healthy, 30, f"collector at {self.url} to answer /healthz")

    def _healthy(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"collector exited with {self.process.returncode}:\n{self.log()}")
        def get() -> bool:
            with self.http(timeout=5) as client:
                return client.get("/healthz").status_code == 200

        try:
            return bool(in_netns(self.netns, get))
        except httpx.TransportError:
            return False

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)
        self.process = None

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def ssl_context(self) -> ssl.SSLContext | bool:
        """Trust only this collector's CA, as an enrolled agent does."""
        return ssl.create_default_context(cafile=str(self.ca_file)) if self.tls else False

    def http(self, timeout: float = 30) -> httpx.Client:
        return httpx.Client(base_url=self.url, verify=self.ssl_context(), timeout=timeout)

    def api(self, path: str, **params: Any) -> Any:
        def get() -> httpx.Response:
            with self.http() as client:
                return client.get(
                    path, params=params, headers={"Authorization": f"Bearer {self.admin_key}"}
                )

        response = in_netns(self.netns, get)
        response.raise_for_status()
        return response.json()

    def agent_row(self, agent_id: str) -> dict[str, Any] | None:
        """The agent as ``/api/v1/agents`` lists it."""
        for row in self.api("/api/v1/agents")["agents"]:
            if row["id"] == agent_id:
                return dict(row)
        return None

    def wait_online(self, agent_id: str, timeout: float = 20) -> dict[str, Any]:
        """Wait until the agent has heartbeated and is listed online; return its row."""

        def online() -> dict[str, Any] | None:
            row = self.agent_row(agent_id)
            return row if row and row["status"] == "online" and row.get("agent_version") else None

        result: dict[str, Any] = wait_until(online, timeout, f"agent {agent_id} online")
        return result

    def events(self, **filters: Any) -> list[dict[str, Any]]:
        """Events from the read API (first page), filtered."""
        result: list[dict[str, Any]] = self.api("/api/v1/events", **filters)["events"]
        return result

    def create_token(self, *args: str) -> str:
        return self.cli("token", "create", "--quiet", *args).stdout.strip().splitlines()[-1]

    def engine(self) -> sa.Engine:
        return sa.create_engine(self.database_url)

    def query(self, sql: str, **params: Any) -> list[Any]:
        engine = self.engine()
        try:
            with engine.connect() as conn:
                return list(conn.execute(sa.text(sql), params))
        finally:
            engine.dispose()

    def event_seqs(self, agent_id: str, kind: str | None = None) -> list[int]:
        """The agent's sequence numbers in the order the store received them."""
        sql = "SELECT seq FROM events WHERE agent_id = :agent_id"
        if kind is not None:
            sql += " AND kind = :kind"
        return [row[0] for row in self.query(sql + " ORDER BY pk", agent_id=agent_id, kind=kind)]


@dataclass
class Agent:
    """One ``courtguard-agent run`` process with its own data dir, enrolled against a collector."""

    home: Path
    collector: Collector
    settings: dict[str, str] = field(default_factory=dict)
    #: Run inside this network namespace (``ip netns exec``).
    netns: str | None = None
    process: subprocess.Popen[bytes] | None = None
    agent_id: str = ""
    ready_lines: int = 0

    @property
    def data_dir(self) -> Path:
        return self.home / "agent"

    @property
    def log_file(self) -> Path:
        return self.home / "agent.log"

    def env(self) -> dict[str, str]:
        env = _base_env()
        values = {
            "data_dir": str(self.data_dir),
            "policy_dir": str(POLICIES),
            **TEST_PACING,
            "log_format": "json",
            "allow_plain_http": "true" if not self.collector.tls else "false",
            # The outreach detector installs an nftables table in the namespace it runs in;
            # only tests that give it a namespace of its own switch it on.
            "detectors__outreach": "false",
        }
        values.update(self.settings)
        env.update({f"COURTGUARD_AGENT_{k.upper()}": v for k, v in values.items()})
        return env

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*netns_prefix(self.netns), str(BIN / "courtguard-agent"), *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=check,
        )

    def enroll(self, *extra: str) -> None:
        token = self.collector.create_token(*extra)
        args = ["enroll", "--collector", self.collector.url, "--token", token]
        if self.collector.tls:
            args += ["--ca", str(self.collector.ca_file)]
        self.cli(*args)
        credentials = json.loads((self.data_dir / "credentials.json").read_text())
        self.agent_id = credentials["agent_id"]

    def start(self, wait_ready: bool = True) -> None:
        self.ready_lines = self.log().count("agent ready")
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [*netns_prefix(self.netns), str(BIN / "courtguard-agent"), "run"],
                env=self.env(),
                stdout=log,
                stderr=log,
            )
        if wait_ready:
            wait_until(self._ready, 30, "the agent to log 'agent ready'")

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"agent exited with {self.process.returncode}:\n{self.log()}")
        return self.log().count("agent ready") > self.ready_lines

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)
        code = self.process.returncode
        self.process = None
        return code

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def log_records(self) -> list[dict[str, Any]]:
        records = []
        for line in self.log().splitlines():
            with contextlib.suppress(ValueError):
                records.append(json.loads(line))
        return records

    def emit_test(
        self, count: int, severity: str = "low", padding: int = 0, note: str = ""
    ) -> None:
        self.cli(
            "emit-test",
            "--count",
            str(count),
            "--severity",
            severity,
            "--padding",
            str(padding),
            "--note",
            note,
        )

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.cli("status", "--json").stdout)
        return result


def log_has(text: str, pattern: str) -> bool:
    return re.search(pattern, text) is not None


def synthetic_events(
    agent_id: str, first_seq: int, count: int, host: str = "ws-bench", padding: int = 0
) -> list[dict[str, Any]]:
    """Valid ``agent.test`` events as JSON-ready dicts, as an agent would make them."""
    from agent.events import utcnow, uuid7

    now = utcnow().isoformat()
    return [
        {
            "id": str(uuid7()),
            "seq": first_seq + i,
            "time": now,
            "agent_id": agent_id,
            "host": host,
            "kind": "agent.test",
            "severity": "low",
            "summary": "基准测试事件",
            "evidence": {"note": "synthetic", "index": first_seq + i, "padding": "x" * padding},
        }
        for i in range(count)
    ]


def batch_body(agent_id: str, events: list[dict[str, Any]], compress: bool = True) -> bytes:
    import gzip

    from agent.events import utcnow

    raw = json.dumps(
        {"agent_id": agent_id, "sent_at": utcnow().isoformat(), "events": events},
        ensure_ascii=False,
    ).encode()
    return gzip.compress(raw, compresslevel=1) if compress else raw


def agent_headers(credentials: dict[str, Any], gzip_body: bool = True) -> dict[str, str]:
    headers = {
        "Authorization": f"Bearer {credentials['agent_id']}:{credentials['secret']}",
        "Content-Type": "application/json",
    }
    if gzip_body:
        headers["Content-Encoding"] = "gzip"
    return headers


def policies_watching(directory: Path, folders: list[Path]) -> Path:
    """A copy of the project's policies whose documents policy watches ``folders``."""
    directory.mkdir(parents=True, exist_ok=True)
    for source in POLICIES.glob("*.yaml"):
        data = yaml.safe_load(source.read_text())
        if data.get("kind") == "documents":
            data["watch"]["folders"] = [str(f) for f in folders]
            data["watch"]["settle_s"] = 0.5
        (directory / source.name).write_text(yaml.safe_dump(data, allow_unicode=True))
    return directory


@contextlib.contextmanager
def private_rsyslog(work: Path) -> Iterator[Path]:
    """A private rsyslogd owning /dev/log, writing ``auth,authpriv`` to ``work/auth.log``.

    For machines without a syslog daemon (containers, CI): real sudo, su and
    usermod then write their own lines where an agent can tail them. Refuses
    to start when /dev/log already belongs to another daemon.
    """
    daemon = shutil.which("rsyslogd")
    if daemon is None:
        raise RuntimeError("rsyslogd is not installed (Debian package rsyslog)")
    if os.path.exists("/dev/log"):
        raise RuntimeError("/dev/log exists: another syslog daemon owns it")
    work.mkdir(parents=True, exist_ok=True)
    auth_log = work / "auth.log"
    auth_log.touch()
    config = work / "rsyslog.conf"
    config.write_text(
        f'global(workDirectory="{work}")\n'
        'module(load="imuxsock" SysSock.Use="on" SysSock.Name="/dev/log")\n'
        f'auth,authpriv.* action(type="omfile" file="{auth_log}" template="RSYSLOG_FileFormat")\n'
    )
    pid_file = work / "rsyslogd.pid"
    subprocess.run([daemon, "-f", str(config), "-i", str(pid_file)], check=True)
    wait_until(lambda: os.path.exists("/dev/log") and pid_file.exists(), 10, "rsyslogd")
    pid = int(pid_file.read_text())
    try:
        yield auth_log
    finally:
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not os.path.exists(f"/proc/{pid}"), 10, "rsyslogd to stop")
        with contextlib.suppress(FileNotFoundError):
            os.unlink("/dev/log")
