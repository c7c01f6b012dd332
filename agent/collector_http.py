"""The agent's HTTP client for the collector: pinned CA, timeouts, keep-alive, one safe retry.

Every connection the agent keeps to the collector follows three settings:

- ``connect_timeout_s``: TCP connect plus TLS handshake. Short, so a connect
  attempt that went out of the wrong interface (a route that changed and came
  back) is given up soon and retried with the shipper's backoff;
- ``http_timeout_s``: each read, write and wait for a pooled connection;
- ``keepalive_expiry_s``: how long an idle connection is kept for reuse. It must
  stay clearly below the collector's ``keep_alive_timeout_s`` (and any proxy's
  idle timeout on the way), so the agent gives a connection up before the
  server closes it.

A request that still meets a server-side close on a reused connection (the
server closed it just as the request went out) fails before any byte of an
answer came back. Such a request is sent once more, at once, on a fresh
connection when it is idempotent: GET and HEAD, and requests marked with the
``IDEMPOTENT`` extension (an event batch: ingest deduplicates by event id).
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

import httpx
import structlog

from agent.version import __version__

if TYPE_CHECKING:
    from agent.enrollment import Credentials
    from agent.settings import AgentSettings

log = structlog.get_logger("courtguard.collector_http")

#: Request extension that marks a POST safe to send twice (``extensions={IDEMPOTENT: True}``).
IDEMPOTENT: Final = "courtguard.idempotent"
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})

Trace = Callable[[str, dict[str, Any]], Awaitable[None]]


class _ConnectionUse:
    """Learns from httpcore's ``trace`` events whether a request went out on a reused connection."""

    def __init__(self, inner: Trace | None) -> None:
        self._inner = inner
        self.connected = False
        self.sent = False

    @property
    def reused(self) -> bool:
        return self.sent and not self.connected

    async def trace(self, name: str, info: dict[str, Any]) -> None:
        if name.startswith("connection.connect_"):
            self.connected = True
        elif name.endswith(".send_request_headers.started"):
            self.sent = True
        if self._inner is not None:
            await self._inner(name, info)


class RetryOnReusedConnection(httpx.AsyncBaseTransport):
    """Send an idempotent request once more when a reused connection failed before any answer."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        use = _ConnectionUse(request.extensions.get("trace"))
        request.extensions = {**request.extensions, "trace": use.trace}
        try:
            return await self._inner.handle_async_request(request)
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            idempotent = request.method in _SAFE_METHODS or request.extensions.get(IDEMPOTENT)
            if not (use.reused and idempotent):
                raise
            log.info(
                "the collector closed a reused connection before answering; sending again",
                method=request.method, path=request.url.path, error=type(exc).__name__,
            )
        request.extensions = {**request.extensions, "trace": _ConnectionUse(None).trace}
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def collector_http_client(
    base_url: str,
    verify: ssl.SSLContext | bool,
    settings: AgentSettings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    max_connections: int = 10,
) -> httpx.AsyncClient:
    """An ``AsyncClient`` for ``base_url`` with the timeouts and keep-alive in the docstring.

    ``transport`` replaces the network (tests); it is used as given, without the retry.
    """
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=settings.keepalive_expiry_s,
    )
    if transport is None:
        transport = RetryOnReusedConnection(
            httpx.AsyncHTTPTransport(verify=verify, limits=limits)
        )
    return httpx.AsyncClient(
        base_url=base_url,
        transport=transport,
        timeout=httpx.Timeout(settings.http_timeout_s, connect=settings.connect_timeout_s),
        headers={"User-Agent": f"courtguard-agent/{__version__}"},
    )


def collector_client(
    credentials: Credentials, settings: AgentSettings, transport: Any = None
) -> httpx.AsyncClient:
    """The enrolled agent's client: its collector's URL, and its CA pinned (https)."""
    from agent.enrollment import ca_path, ssl_context

    verify: ssl.SSLContext | bool = False
    if credentials.collector_url.startswith("https://"):
        verify = ssl_context(ca_path(settings.data_dir))
    return collector_http_client(credentials.collector_url, verify, settings, transport=transport)
