"""Signed acknowledgement links: a notification carries one per alert and person.

``/api/v1/ack/{id}?by=PERSON&exp=UNIX&sig=HEX`` where ``sig`` is
HMAC-SHA256, keyed by the collector's link key, of ``"{id}:{person}:{exp}"``.
The link shows a confirmation page (GET changes nothing: chat clients fetch
links to preview them); its form POSTs back, and only then is the alert
acknowledged, in the person's name, through the alert service (audited).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
import socket
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final

from collector import credentials
from collector.errors import ConfigError

if TYPE_CHECKING:
    from collector.settings import CollectorSettings

KEY_FILE = "alert-link.key"
#: Names that reach only the machine itself: a link built on one opens nothing on a phone.
LOOPBACK_NAMES: Final = frozenset({"localhost", "localhost.localdomain", "ip6-localhost",
                                   "ip6-loopback"})


@dataclass(frozen=True)
class LinkBase:
    """Where the links in notifications point, and what an administrator should hear about it."""

    url: str
    warning: str | None = None


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _reaches_only_itself(name: str) -> bool:
    address = _address(name)
    if address is not None:
        return address.is_loopback or address.is_unspecified
    return not name or name.lower() in LOOPBACK_NAMES


def link_base_url(settings: CollectorSettings) -> LinkBase:
    """The base of acknowledgement and console links: ``public_url``, else derived.

    A listener on a wildcard address (``0.0.0.0``, ``::``) is not an address anybody
    can open: the links then use this host's fully qualified name (its short name
    when the FQDN is only ``localhost``) and say so in a warning. When neither names
    more than the machine itself the router cannot form a link, and ``ConfigError``
    asks for ``public_url``.
    """
    if settings.public_url:
        return LinkBase(settings.public_url.rstrip("/"))
    address = _address(settings.listen_host)
    if settings.listen_host and (address is None or not address.is_unspecified):
        warning = None
        if _reaches_only_itself(settings.listen_host):
            warning = (f"alert links point at {settings.url}, which only this machine can "
                       "open; set public_url to the address the duty officers reach")
        return LinkBase(settings.url, warning)
    name = next((n for n in (socket.getfqdn(), socket.gethostname())
                 if not _reaches_only_itself(n)), None)
    if name is None:
        raise ConfigError(
            f"listen_host {settings.listen_host or '(all addresses)'} is not an address a "
            "notification link can use, and this host's name is only localhost: set "
            "public_url (e.g. https://courtguard.court.example:8443) or alert_router = false")
    host = f"[{name}]" if ":" in name else name
    url = f"{'https' if settings.tls else 'http'}://{host}:{settings.listen_port}"
    return LinkBase(url, (
        f"public_url is not set and the collector listens on {settings.listen_host or 'all'} "
        f"addresses: alert links use {url}, derived from this host's name; set public_url "
        "if the duty officers reach the collector by another name"))


def load_link_key(configured: str | None, data_dir: Path) -> bytes:
    """The configured key, else ``data_dir/alert-link.key`` (made on first use, mode 0600).

    Collector processes on different machines must share the key: configure
    ``alert_link_secret`` for them.
    """
    if configured:
        return configured.encode()
    path = data_dir / KEY_FILE
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ConfigError(f"cannot read the alert link key {path}: {exc.strerror}") from exc
    key = secrets.token_hex(32).encode()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"cannot write the alert link key {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


def signature(key: bytes, alert_id: int, person: str, expires: int) -> str:
    return hmac.new(key, f"{alert_id}:{person}:{expires}".encode(), hashlib.sha256).hexdigest()


def ack_url(base_url: str, key: bytes, alert_id: int, person: str, now: datetime,
            valid: timedelta) -> str:
    expires = int((now + valid).timestamp())
    query = urllib.parse.urlencode(
        {"by": person, "exp": expires, "sig": signature(key, alert_id, person, expires)})
    return f"{base_url.rstrip('/')}/api/v1/ack/{alert_id}?{query}"


@dataclass(frozen=True)
class LinkCheck:
    ok: bool
    reason: str = ""


def check_link(key: bytes, alert_id: int, person: str, expires: int, sig: str,
               now: datetime) -> LinkCheck:
    """Valid signature and not expired; the reason is Chinese, shown on the page."""
    if not credentials.same(signature(key, alert_id, person, expires), sig):
        return LinkCheck(False, "链接签名无效（链接被修改或不属于本系统）")
    if now.timestamp() > expires:
        return LinkCheck(False, "链接已过期，请在控制台确认告警")
    return LinkCheck(True)
