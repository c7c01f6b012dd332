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
import os
import secrets
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from collector import credentials
from collector.errors import ConfigError

KEY_FILE = "alert-link.key"


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
