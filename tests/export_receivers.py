"""Real SIEM receivers on loopback for the export tests and bench/export.py.

- ``TlsRsyslog``: a private rsyslogd receiving RFC 5425 syslog over TLS
  (``imtcp`` with the ``gtls`` driver) with a certificate from a private CA
  made by the collector's own TLS helper, writing each message as one line
  (``msgid``, ``hostname``, severity, ``msg``, tab-separated) to a file; it
  can be stopped and started again on the same port, as a SIEM relay that
  goes away for a while.
- ``NdjsonReceiver``: an HTTPS server taking newline-delimited JSON POSTs,
  answering a scripted status while ``refusing`` is set.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from collector.tls import TLSFiles, ensure_tls
from tests.e2e.harness import free_port, wait_until


def private_ca(directory: Path) -> TLSFiles:
    """A private CA and a server certificate for localhost and 127.0.0.1 it signed."""
    ensure_tls(directory)
    return TLSFiles.in_dir(directory)


@dataclass(frozen=True)
class SyslogLine:
    msgid: str
    hostname: str
    severity: int
    msg: str

    def json(self) -> Any:
        return json.loads(self.msg)


@dataclass
class TlsRsyslog:
    """rsyslogd with imtcp over gtls on 127.0.0.1:``port``, writing ``out.log``."""

    work: Path
    port: int = field(default_factory=free_port)
    pid: int | None = None

    def __post_init__(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        self.tls = private_ca(self.work / "tls")
        self.out = self.work / "out.log"
        self.config = self.work / "rsyslog.conf"
        self.pid_file = self.work / "rsyslogd.pid"
        self.config.write_text(
            f'global(workDirectory="{self.work}" maxMessageSize="64k"\n'
            '       DefaultNetstreamDriver="gtls"\n'
            f'       DefaultNetstreamDriverCAFile="{self.tls.ca_cert}"\n'
            f'       DefaultNetstreamDriverCertFile="{self.tls.server_cert}"\n'
            f'       DefaultNetstreamDriverKeyFile="{self.tls.server_key}")\n'
            'module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" '
            'StreamDriver.AuthMode="anon")\n'
            f'input(type="imtcp" port="{self.port}" address="127.0.0.1")\n'
            'template(name="fields" type="string" '
            'string="%msgid%\\t%hostname%\\t%syslogseverity%\\t%msg%\\n")\n'
            f'*.* action(type="omfile" file="{self.out}" template="fields")\n'
        )

    def start(self) -> None:
        daemon = shutil.which("rsyslogd")
        if daemon is None:
            raise RuntimeError("rsyslogd is not installed (Debian package rsyslog)")
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()
        subprocess.run([daemon, "-f", str(self.config), "-i", str(self.pid_file)], check=True)
        wait_until(self._listening, 10, f"rsyslogd listening on {self.port}")
        self.pid = int(self.pid_file.read_text())

    def _listening(self) -> bool:
        if not self.pid_file.exists():
            return False
        listening = subprocess.run(["ss", "-Hltn", f"sport = :{self.port}"],
                                   capture_output=True, text=True).stdout
        return str(self.port) in listening

    def stop(self) -> None:
        if self.pid is None:
            return
        pid, self.pid = self.pid, None
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not os.path.exists(f"/proc/{pid}"), 10, "rsyslogd to stop")

    def lines(self) -> list[SyslogLine]:
        if not self.out.exists():
            return []
        result = []
        for raw in self.out.read_text(encoding="utf-8").splitlines():
            msgid, hostname, severity, msg = raw.split("\t", 3)
            result.append(SyslogLine(msgid, hostname, int(severity), msg.lstrip("\ufeff")))
        return result


@contextlib.contextmanager
def tls_rsyslog(work: Path) -> Iterator[TlsRsyslog]:
    receiver = TlsRsyslog(work)
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


class NdjsonReceiver:
    """HTTPS on 127.0.0.1: each POST's lines parsed as JSON and kept, or refused on demand."""

    def __init__(self, work: Path) -> None:
        self.tls = private_ca(work)
        self.documents: list[dict[str, Any]] = []
        self.posts = 0
        self.refusing: int | None = None  # an HTTP status to answer instead of 200
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver.lock:
                    receiver.posts += 1
                    status = receiver.refusing or 200
                    if status == 200:
                        receiver.documents += [json.loads(line) for line in body.splitlines()]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.tls.server_cert), str(self.tls.server_key))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}/ingest"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def received(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.documents)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def ndjson_receiver(work: Path) -> Iterator[NdjsonReceiver]:
    receiver = NdjsonReceiver(work)
    try:
        yield receiver
    finally:
        receiver.close()
