"""Real collector and agent processes for end-to-end tests and benchmarks.

Each process runs from this checkout's virtualenv with its settings in
environment variables, its state in a temporary directory, and talks only to
127.0.0.1 on a free port.

A started process is waited for on its own readiness signal, the ``READY=1``
it sends to ``NOTIFY_SOCKET`` as under systemd, and the wait fails at once
when the process exits; the only time limit is a ceiling (``READY_CEILING_S``)
that a loaded machine never reaches while the process makes progress. Every
process runs in a process group of its own: a failed start, a stop that
times out, and the end of the test session (``sweep``) kill the whole group,
so no collector, agent or child of theirs outlives the test that started it.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
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


#: Longest wait for a process' READY=1 while it keeps running: reached only when it hangs.
READY_CEILING_S = 300.0
#: Longest wait for a signalled process to exit before its process group is killed.
STOP_CEILING_S = 120.0


def load_scale() -> float:
    """How many times busier than one runnable task per core the machine is now (at least 1)."""
    return max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.1) -> Any:
    """Poll until ``predicate`` returns something truthy; fail the test naming ``what``.

    ``timeout`` is what a quiet machine needs; it stretches with the load average,
    so a machine with five runnable tasks per core waits five times as long.
    """
    scale = load_scale()
    budget = timeout * scale
    deadline = time.monotonic() + budget
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(
        f"timed out after {budget:.0f}s ({timeout:.0f}s x load {scale:.1f}) waiting for {what} "
        f"(last: {last!r})"
    )


class NotifySocket:
    """A datagram socket a started process sends ``READY=1`` to, as systemd's NOTIFY_SOCKET.

    A short path under /tmp (a socket path has at most 107 bytes) rather than an
    abstract name, which a process in another network namespace would not
    see. Closed once the process is ready, so later
    notifications (watchdog pings, STATUS) fail at the sender, which ignores
    that, instead of filling a buffer nobody reads.
    """

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="cg-notify-"))
        self.path = self.directory / "notify"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.bind(str(self.path))

    def wait_ready(
        self, process: subprocess.Popen[bytes], what: str, log: Callable[[], str],
        ceiling: float = READY_CEILING_S,
    ) -> None:
        """Return on READY=1; fail at once when ``process`` exits, or at ``ceiling`` if it hangs."""
        started = time.monotonic()
        exited = os.pidfd_open(process.pid)
        try:
            while True:
                remaining = ceiling - (time.monotonic() - started)
                if remaining <= 0:
                    raise AssertionError(
                        f"{what} (pid {process.pid}) still running but not ready after "
                        f"{ceiling:.0f}s:\n{tail(log())}"
                    )
                readable, _, _ = select.select([self.sock, exited], [], [], remaining)
                if self.sock in readable:
                    message = self.sock.recv(4096).decode(errors="replace")
                    if "READY=1" in message.splitlines():
                        return
                elif exited in readable:
                    code = process.wait()
                    raise AssertionError(
                        f"{what} exited with {code} before it was ready:\n{tail(log())}"
                    )
        finally:
            os.close(exited)

    def close(self) -> None:
        self.sock.close()
        shutil.rmtree(self.directory, ignore_errors=True)


def tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


#: Processes this interpreter started and has not seen stop, by pid: what ``sweep`` kills.
_STARTED: dict[int, tuple[str, subprocess.Popen[bytes]]] = {}


def spawn(
    what: str, command: list[str], env: dict[str, str], log_file: Path
) -> subprocess.Popen[bytes]:
    """Start ``command`` in a process group of its own, output to ``log_file``."""
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=log, start_new_session=True
        )
    _STARTED[process.pid] = (what, process)
    return process


def stop_process(
    process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, ceiling: float = STOP_CEILING_S
) -> int:
    """Send ``sig``, wait for the exit (``ceiling`` at most), then kill what is left of the group.

    A process that ignores ``sig`` past the ceiling is killed with its group;
    so are children that outlived a process that did exit.
    """
    try:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
            try:
                process.wait(timeout=ceiling)
            except subprocess.TimeoutExpired:
                _kill_group(process.pid)
                process.wait()
        _kill_group(process.pid)
    finally:
        _STARTED.pop(process.pid, None)
    return process.returncode


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def sweep() -> list[str]:
    """Kill every process (and its group) this interpreter started and did not stop; name them."""
    left = []
    for pid, (what, process) in list(_STARTED.items()):
        if process.poll() is None:
            left.append(f"{what} (pid {pid})")
        stop_process(process, signal.SIGKILL, ceiling=10)
    return left


atexit.register(sweep)


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


#: What systemd gives a service; a test process gets its own NOTIFY_SOCKET or none.
_SYSTEMD_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("COURTGUARD_") and k not in _SYSTEMD_VARIABLES}
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

    def start(self, ready_ceiling: float = READY_CEILING_S) -> None:
        """Start ``serve`` and wait for its READY=1; a start that fails leaves no process."""
        notify = NotifySocket()
        try:
            env = {**self.env(), "NOTIFY_SOCKET": str(notify.path)}
            self.process = spawn(
                f"collector at {self.url}",
                [*netns_prefix(self.netns), str(BIN / "courtguard-collector"), "serve"],
                env, self.log_file,
            )
            self.starts += 1
            notify.wait_ready(self.process, f"collector at {self.url}", self.log, ready_ceiling)
        except BaseException:
            self.stop(signal.SIGKILL)
            raise
        finally:
            notify.close()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None:
            return
        stop_process(self.process, sig)
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
            # agent_version is known from enrollment; heartbeat_interval_s only from a heartbeat.
            heartbeated = row and row["status"] == "online" and row.get("heartbeat_interval_s")
            return row if heartbeated else None

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
        if "identity_sysfs" not in self.settings:
            values["identity_sysfs"] = str(self.own_firmware())
        values.update(self.settings)
        env.update({f"COURTGUARD_AGENT_{k.upper()}": v for k, v in values.items()})
        return env

    def own_firmware(self) -> Path:
        """A sysfs tree with this agent's own firmware UUID: every test agent is a workstation
        of its own, so agents of one test never share the host fingerprint and supersede
        each other; the UUID follows the agent's home, as a machine's follows its board."""
        root = self.home / "sysfs"
        uuid_file = root / "class/dmi/id/product_uuid"
        if not uuid_file.exists():
            uuid_file.parent.mkdir(parents=True, exist_ok=True)
            uuid_file.write_text(f"{uuid.uuid5(uuid.NAMESPACE_URL, str(self.home))}\n")
        return root

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

    def start(self, wait_ready: bool = True, ready_ceiling: float = READY_CEILING_S) -> None:
        """Start ``run``; with ``wait_ready``, wait for READY=1 (a failed wait leaves none)."""
        command = [*netns_prefix(self.netns), str(BIN / "courtguard-agent"), "run"]
        if not wait_ready:
            self.process = spawn(f"agent in {self.home}", command, self.env(), self.log_file)
            return
        notify = NotifySocket()
        try:
            env = {**self.env(), "NOTIFY_SOCKET": str(notify.path)}
            self.process = spawn(f"agent in {self.home}", command, env, self.log_file)
            notify.wait_ready(self.process, f"agent in {self.home}", self.log, ready_ceiling)
        except BaseException:
            self.stop(signal.SIGKILL)
            raise
        finally:
            notify.close()

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.process is None:
            return None
        code = stop_process(self.process, sig)
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
