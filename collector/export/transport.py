"""How a batch reaches a receiver: syslog over TLS (RFC 5424/5425) or NDJSON over HTTPS.

``send`` returns only once the receiver has taken the whole batch, and raises
``ExportError`` (in Chinese) otherwise; the caller moves its cursor only
after a return.

Syslog over TCP has no acknowledgement, and a write into a connection the
receiver has just dropped succeeds locally and is lost. So each batch goes
over a connection of its own: the messages, then TLS ``close_notify``, then
a wait for the receiver to close its side. rsyslog closes only after reading
everything before our close, so that close is the receipt; a reset or a
timeout instead means the batch is sent again (at least once).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from datetime import UTC, datetime
from typing import Protocol

import httpx

from collector.errors import ExportError
from collector.export.config import OutputSettings

#: RFC 5424 severity by courtguard severity (2 crit, 3 err, 4 warning, 5 notice, 6 info).
SYSLOG_SEVERITY = {"critical": 2, "high": 3, "medium": 4, "low": 5, "info": 6}
BOM = "\ufeff".encode()


def _printable(value: str, limit: int) -> str:
    """RFC 5424 header fields: printable US-ASCII without spaces, ``-`` when empty."""
    if value.isascii() and value.isprintable() and " " not in value:
        return value[:limit] or "-"
    text = "".join(c if 33 <= ord(c) <= 126 else "_" for c in value)[:limit]
    return text or "-"


def syslog_message(output: OutputSettings, *, time: datetime, host: str, msgid: str,
                   severity: str, body: str) -> bytes:
    """One RFC 5424 message (UTF-8 MSG with its BOM), without framing."""
    priority = output.facility * 8 + SYSLOG_SEVERITY.get(severity, 5)
    stamp = time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    header = (f"<{priority}>1 {stamp} {_printable(host, 255)} {output.app_name} - "
              f"{_printable(msgid, 32)} -")
    return header.encode("ascii") + b" " + BOM + body.encode()


def octet_framed(message: bytes) -> bytes:
    """RFC 6587 octet counting, as RFC 5425 requires: ``MSG-LEN SP SYSLOG-MSG``."""
    return str(len(message)).encode("ascii") + b" " + message


def tls_context(output: OutputSettings) -> ssl.SSLContext:
    """Verify the receiver against ``ca_file`` (else the system's CAs); TLS 1.2 at least."""
    try:
        context = ssl.create_default_context(
            cafile=str(output.ca_file) if output.ca_file else None)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if output.client_cert is not None and output.client_key is not None:
            context.load_cert_chain(str(output.client_cert), str(output.client_key))
    except (OSError, ssl.SSLError) as exc:
        raise ExportError(f"输出 {output.name} 的证书文件无法读取：{exc}") from exc
    return context


class Transport(Protocol):
    def send(self, records: list[bytes]) -> None: ...
    def close(self) -> None: ...


class SyslogTLS:
    """RFC 5425: octet-framed RFC 5424 messages over TLS, one connection per batch."""

    def __init__(self, output: OutputSettings) -> None:
        assert output.host is not None  # noqa: S101 (OutputSettings requires it)
        self.output = output
        self.host = output.host
        self.context = tls_context(output)

    def send(self, records: list[bytes]) -> None:
        where = f"{self.host}:{self.output.port}"
        data = b"".join(octet_framed(record) for record in records)
        try:
            with socket.create_connection((self.host, self.output.port),
                                          timeout=self.output.timeout_s) as raw, \
                    self.context.wrap_socket(
                        raw, server_hostname=self.output.server_name or self.host) as tls:
                tls.sendall(data)
                self._receipt(tls)
        except ssl.SSLCertVerificationError as exc:
            raise ExportError(f"{where} 的证书未通过校验：{exc.verify_message}") from exc
        except ConnectionRefusedError as exc:
            raise ExportError(f"{where} 拒绝连接（接收端未运行或端口不对）") from exc
        except TimeoutError as exc:
            raise ExportError(f"{where} 在 {self.output.timeout_s:g} 秒内无应答") from exc
        except (OSError, ssl.SSLError) as exc:
            raise ExportError(f"发送到 {where} 失败：{exc}") from exc

    @staticmethod
    def _receipt(tls: ssl.SSLSocket) -> None:
        """Close our side and wait for the receiver's close: it has read everything then."""
        # SSLEOFError: the receiver closed TCP without close_notify, after reading to our close.
        with contextlib.suppress(ssl.SSLEOFError):
            tls.unwrap()

    def close(self) -> None:
        return None


class HttpsNdjson:
    """One POST per batch, one ECS JSON document a line; any 2xx is the receipt."""

    def __init__(self, output: OutputSettings) -> None:
        assert output.url is not None  # noqa: S101 (OutputSettings requires it)
        self.output = output
        self.url = output.url
        self.client = httpx.Client(verify=tls_context(output), timeout=output.timeout_s,
                                   headers={"Content-Type": "application/x-ndjson",
                                            **output.headers})

    def send(self, records: list[bytes]) -> None:
        try:
            response = self.client.post(self.url, content=b"".join(records))
        except httpx.TimeoutException as exc:
            raise ExportError(f"{self.url} 在 {self.output.timeout_s:g} 秒内无应答") from exc
        except httpx.HTTPError as exc:
            raise ExportError(f"发送到 {self.url} 失败：{exc}") from exc
        if not response.is_success:
            raise ExportError(f"{self.url} 拒收，HTTP {response.status_code}")

    def close(self) -> None:
        self.client.close()


def transport_for(output: OutputSettings) -> Transport:
    return SyslogTLS(output) if output.type == "syslog-tls" else HttpsNdjson(output)
