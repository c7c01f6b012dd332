"""Which certificate authorities a channel trusts, and the HTTP client that trusts them.

A court reaches its robots and gateways through a private deployment
(专有钉钉, 政务微信) or a relay in the DMZ whose certificate is signed by the
court's own CA. A channel's ``ca_file`` names that CA: the channel then
trusts it instead of the public bundle (certifi, the system's for e-mail).
Contexts are built once per file and rebuilt when the file changes (a CA
renewed in place is picked up without a restart); HTTP clients are shared by
the channels that trust the same file.
"""

from __future__ import annotations

import functools
import ssl
from pathlib import Path

import httpx

from collector.notify.config import ChannelSettings


class CAFileError(Exception):
    """A channel's ``ca_file`` cannot be read or holds no certificate; the message says which."""


@functools.lru_cache(maxsize=32)
def _context(path: str, _mtime_ns: int, _size: int) -> ssl.SSLContext:
    # The file's mtime and size are part of the key so a replaced CA is read again.
    return ssl.create_default_context(cafile=path)


def trust_context(ca_file: Path) -> ssl.SSLContext:
    """A client context verifying peers against ``ca_file`` only (hostnames checked)."""
    try:
        stat = ca_file.stat()
        return _context(str(ca_file), stat.st_mtime_ns, stat.st_size)
    except (OSError, ValueError) as exc:
        # ssl.SSLError is an OSError: a file without a PEM certificate lands here too.
        reason = getattr(exc, "strerror", None) or str(exc)
        raise CAFileError(f"ca_file {ca_file} cannot be used as a CA bundle: {reason}") from exc


class HttpClients:
    """One ``httpx.Client`` for channels without ``ca_file``, one per CA file for the others."""

    def __init__(self) -> None:
        self._default = httpx.Client(trust_env=False)
        self._by_file: dict[Path, tuple[ssl.SSLContext, httpx.Client]] = {}

    def for_channel(self, settings: ChannelSettings) -> httpx.Client:
        """The client to send ``settings``' requests with; raises ``CAFileError``."""
        if settings.ca_file is None:
            return self._default
        context = trust_context(settings.ca_file)
        known = self._by_file.get(settings.ca_file)
        if known is not None:
            if known[0] is context:
                return known[1]
            known[1].close()  # the file changed: its old client trusts the old CA
        client = httpx.Client(trust_env=False, verify=context)
        self._by_file[settings.ca_file] = (context, client)
        return client

    def close(self) -> None:
        self._default.close()
        for _context, client in self._by_file.values():
            client.close()
        self._by_file.clear()
