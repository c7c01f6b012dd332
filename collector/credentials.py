"""Secrets the collector hands out (agent secrets, enrollment tokens, API keys), and their checks.

Each is 256 bits from ``secrets``; only its SHA-256 is stored. A slow password
hash buys nothing for values this random, and a fast one keeps per-request
authentication cheap. Comparisons use ``hmac.compare_digest`` on bytes (``same``): on
``str`` it raises for any non-ASCII character, which a client can always send.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Final

TOKEN_PREFIX: Final = "cgt_"  # noqa: S105 (a label that makes tokens recognisable, not a secret)
API_KEY_PREFIX: Final = "cgk_"
#: How many characters of a token or key are kept in clear, to tell them apart in listings.
DISPLAY_CHARS: Final = 10


def digest(value: str) -> str:
    """The hex SHA-256 stored in place of a secret."""
    return hashlib.sha256(value.encode(errors="surrogatepass")).hexdigest()


def same(expected: str, presented: str) -> bool:
    """Constant-time equality of two strings of any characters."""
    return hmac.compare_digest(expected.encode(errors="surrogatepass"),
                               presented.encode(errors="surrogatepass"))


def matches(value: str, stored_digest: str) -> bool:
    return same(digest(value), stored_digest)


def new_agent_secret() -> str:
    return secrets.token_urlsafe(32)


def new_enrollment_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def display_prefix(value: str) -> str:
    return value[:DISPLAY_CHARS]


def bearer(authorization: str | None) -> str | None:
    """The credential in an ``Authorization: Bearer ...`` header, or None when absent."""
    if not authorization:
        return None
    scheme, _, credential = authorization.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        return None
    return credential.strip()
