"""Real receivers on loopback for the notification tests and bench/alerting.py.

- ``RobotReceiver``: an HTTP server playing a DingTalk robot (checks the
  加签 signature exactly as DingTalk documents: the timestamp within an hour,
  ``sign`` equal to base64 HMAC-SHA256 of ``timestamp\\nsecret`` after URL
  decoding), a WeCom group robot, an Alertmanager webhook consumer or an SMS
  gateway; it checks each body's shape and answers like the real thing, or
  with a scripted status (500, 500, 500, then 200). Given ``tls_dir`` it
  serves HTTPS with a certificate signed by a private CA made there (the
  collector's own TLS helper), as a court's 专有钉钉 or DMZ relay does.
- ``smtp_relay``: an aiosmtpd SMTP server requiring STARTTLS with a test
  certificate made by the collector's own TLS helper.
"""

from __future__ import annotations

import base64
import contextlib
import email.policy
import hashlib
import hmac
import json
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message as EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from collector.tls import TLSFiles, ensure_tls
from tests.e2e.harness import free_port


@dataclass
class Received:
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]
    at: float
    status: int
    problem: str | None = None


def dingtalk_problem(query: dict[str, str], secret: str, body: Any) -> str | None:
    """What DingTalk would refuse in this request (None: it would accept it)."""
    try:
        timestamp = int(query["timestamp"])
        sign = query["sign"]
    except (KeyError, ValueError):
        return "missing timestamp or sign"
    if abs(time.time() * 1000 - timestamp) > 3600 * 1000:
        return "timestamp more than an hour off"
    expected = base64.b64encode(hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(),
                                         hashlib.sha256).digest()).decode()
    if not hmac.compare_digest(expected, sign):
        return "sign mismatch"
    if body.get("msgtype") != "markdown" or not isinstance(body.get("markdown"), dict):
        return "not a markdown message"
    markdown = body["markdown"]
    if not markdown.get("title") or not markdown.get("text"):
        return "markdown needs title and text"
    at = body.get("at", {})
    if not isinstance(at.get("atMobiles", []), list):
        return "at.atMobiles is not a list"
    for mobile in at.get("atMobiles", []):
        if f"@{mobile}" not in markdown["text"]:
            return f"@{mobile} missing from the text (DingTalk only highlights mentions in it)"
    return None


def wecom_problem(body: Any) -> str | None:
    if body.get("msgtype") != "markdown":
        return "not a markdown message"
    content = body.get("markdown", {}).get("content")
    if not isinstance(content, str) or not content:
        return "markdown.content missing"
    if len(content.encode()) > 4096:
        return "markdown.content over 4096 bytes"
    return None


AM_KEYS = {"version", "groupKey", "status", "receiver", "groupLabels", "commonLabels",
           "commonAnnotations", "externalURL", "alerts"}
AM_ALERT_KEYS = {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL",
                 "fingerprint"}


def alertmanager_problem(body: Any) -> str | None:
    missing = AM_KEYS - set(body)
    if missing:
        return f"missing {sorted(missing)}"
    if body["version"] != "4" or body["status"] not in ("firing", "resolved"):
        return "bad version or status"
    for alert in body["alerts"]:
        if AM_ALERT_KEYS - set(alert):
            return f"alert missing {sorted(AM_ALERT_KEYS - set(alert))}"
        if "alertname" not in alert["labels"]:
            return "alert without alertname label"
    return None


@dataclass
class RobotReceiver:
    """One loopback HTTP server; ``flavour`` picks the checks and the success answer."""

    flavour: str  # dingtalk, wecom, webhook, sms
    secret: str = "SECtest-secret+/="  # noqa: S105 (the test robot's own)
    script: list[int] = field(default_factory=list)  # statuses to answer first, in order
    received: list[Received] = field(default_factory=list)
    delay_s: float = 0.0
    #: The body of a scripted failure's answer.
    failure_answer: Any = field(default_factory=lambda: {"error": "scripted failure"})
    #: Serve HTTPS with a private CA made in this directory (``ca_file`` trusts it).
    tls_dir: Path | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def do_POST(self) -> None:
                receiver._handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.ca_file: Path | None = None
        if self.tls_dir is not None:
            ensure_tls(self.tls_dir)
            files = TLSFiles.in_dir(self.tls_dir)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(files.server_cert, files.server_key)
            # The handshake runs in the request's thread: a client refusing the
            # certificate must not stall the accept loop.
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True,
                                                     do_handshake_on_connect=False)
            self.ca_file = files.ca_cert
            # A client that refuses the certificate ends the handshake: no traceback.
            self.server.handle_error = lambda *_args: None  # type: ignore[method-assign]  # silences refused handshakes
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        base = f"{'https' if self.tls_dir else 'http'}://{host}:{port}"
        return {
            "dingtalk": f"{base}/robot/send?access_token=tok",
            "wecom": f"{base}/cgi-bin/webhook/send?key=k",
            "webhook": f"{base}/alertmanager",
            "sms": f"{base}/sms/send",
        }[self.flavour]

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length", "0"))
        raw = handler.rfile.read(length)
        split = urllib.parse.urlsplit(handler.path)
        query = dict(urllib.parse.parse_qsl(split.query))
        if self.delay_s:
            time.sleep(self.delay_s)
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = dict(urllib.parse.parse_qsl(raw.decode()))
        with self._lock:
            scripted = self.script.pop(0) if self.script else None
        problem = self._problem(query, body)
        if scripted is not None and scripted != 200:
            status, answer = scripted, self.failure_answer
        elif problem is not None:
            status, answer = 200, {"errcode": 310000, "errmsg": problem}
        else:
            status, answer = 200, {"errcode": 0, "errmsg": "ok"}
        with self._lock:
            self.received.append(Received(split.path, query, body, dict(handler.headers),
                                          time.time(), status if problem is None else 400,
                                          problem))
        data = json.dumps(answer).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _problem(self, query: dict[str, str], body: Any) -> str | None:
        if self.flavour == "dingtalk":
            return dingtalk_problem(query, self.secret, body)
        if self.flavour == "wecom":
            return wecom_problem(body)
        if self.flavour == "webhook":
            return alertmanager_problem(body)
        if not body.get("mobiles") or not body.get("content"):
            return "sms needs mobiles and content"
        return None

    def accepted(self) -> list[Received]:
        """Requests answered with success (the ones a real robot would have shown)."""
        with self._lock:
            return [r for r in self.received if r.status == 200 and r.problem is None]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def robot(flavour: str, **kwargs: Any) -> Iterator[RobotReceiver]:
    receiver = RobotReceiver(flavour, **kwargs)
    try:
        yield receiver
    finally:
        receiver.close()


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[Envelope, EmailMessage]] = []
        self.tls_used: list[bool] = []

    async def handle_DATA(self, server: SMTP, session: Session,
                          envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        self.messages.append((envelope, message_from_bytes(content, policy=email.policy.default)))
        self.tls_used.append(session.ssl is not None)
        return "250 Message accepted for delivery"


@dataclass
class SmtpRelay:
    host: str
    port: int
    ca_file: Path
    inbox: _Inbox


@contextlib.contextmanager
def smtp_relay(work: Path) -> Iterator[SmtpRelay]:
    """An SMTP relay on loopback that refuses mail before STARTTLS."""
    ensure_tls(work / "smtp-tls")
    files = TLSFiles.in_dir(work / "smtp-tls")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(files.server_cert, files.server_key)
    inbox = _Inbox()
    port = free_port()  # aiosmtpd's start-up self-check cannot use port 0
    controller = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=context,
                            require_starttls=True)
    controller.start()
    try:
        yield SmtpRelay("127.0.0.1", port, files.ca_cert, inbox)
    finally:
        controller.stop()
