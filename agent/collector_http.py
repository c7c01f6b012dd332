"""The agent's HTTP client for the collector: pinned CA, timeouts, keep-alive, one safe retry.

Every connection the agent keeps to the collector follows three settings:

- ``connect_timeout_s``: TCP connect plus TLS handshake. Short, so a connect
  attempt that went out of the wrong interface (a route that changed and came
  back) is given up soon and retried with the shipper's backoff;
- ``http_timeout_s``: each read, write and wait for a pooled connection;
- ``keepalive_expiry_s``: how long an idle connection is kept for reuse (75 s).
  Above ``heartbeat_interval_s`` (60 s), so the shipper sends every heartbeat
  and event batch on the connection the previous one used, without a new TCP
  and TLS handshake; clearly below the collector's ``keep_alive_timeout_s``
  (90 s) and any proxy's or firewall's idle timeout on the way, so the agent
  gives a connection up before the server closes it.

A middlebox that forgets an idle connection without a word (no FIN, no reset)
leaves the agent a connection that looks open: a batch written on it gets no
answer, waits ``http_timeout_s`` and is sent again by the shipper's backoff on
a new connection. Keep such idle timeouts above ``keepalive_expiry_s``.

Two recoveries apply to idempotent requests only: GET and HEAD, and requests
marked with the ``IDEMPOTENT`` extension (an event batch: ingest deduplicates
by event id).

- A request that still meets a server-side close on a reused connection (the
  server closed it just as the request went out) fails before any byte of an
  answer came back. It is sent once more, at once, on a fresh connection.
- When the routes change (``agent.network_changes``), the pooled connections
  are dropped and requests in flight start again on new ones: a connect
  attempt that left by the wrong interface, with that interface's source
  address, would otherwise wait out ``connect_timeout_s`` after the route is
  back.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

import httpx
import structlog

from agent.version import __version__

if TYPE_CHECKING:
    from agent.enrollment import Credentials
    from agent.network_changes import NetworkChanges
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


def _idempotent(request: httpx.Request) -> bool:
    return request.method in _SAFE_METHODS or bool(request.extensions.get(IDEMPOTENT))


class CollectorTransport(httpx.AsyncBaseTransport):
    """httpx's connection pool, with the two recoveries of the module docstring.

    1. A request that fails on a reused connection before any answer came back
       is sent once more on a new connection, if idempotent.
    2. ``network_changed`` swaps in a new pool (the old one is closed) and
       interrupts the idempotent requests in flight, which start again on it:
       a connect attempt stranded on the old route is not waited out.
    """

    #: How many network changes may interrupt one request before it runs to its end.
    MAX_RESTARTS: Final = 3

    def __init__(
        self,
        make_pool: Callable[[], httpx.AsyncBaseTransport],
        network: NetworkChanges | None = None,
    ) -> None:
        self._make_pool = make_pool
        self._pool = make_pool()
        self._changed = asyncio.Event()
        self._retired: set[asyncio.Task[None]] = set()
        self._unsubscribe = network.subscribe(self.network_changed) if network else None

    def network_changed(self) -> None:
        """Drop every pooled connection and restart the requests in flight (on the loop)."""
        old, self._pool = self._pool, self._make_pool()
        self._changed.set()
        self._changed = asyncio.Event()
        closing = asyncio.get_running_loop().create_task(old.aclose())
        self._retired.add(closing)
        closing.add_done_callback(self._retired.discard)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not _idempotent(request):
            return await self._send(self._pool, request)
        for _ in range(self.MAX_RESTARTS):
            changed = self._changed
            sending = asyncio.ensure_future(self._send(self._pool, request))
            waiting = asyncio.ensure_future(changed.wait())
            try:
                await asyncio.wait({sending, waiting}, return_when=asyncio.FIRST_COMPLETED)
            except BaseException:
                sending.cancel()
                raise
            finally:
                waiting.cancel()
            if sending.done():
                return sending.result()
            sending.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await sending
            log.info("network routes changed during a request to the collector; sending again",
                     method=request.method, path=request.url.path)
        return await self._send(self._pool, request)

    async def _send(
        self, pool: httpx.AsyncBaseTransport, request: httpx.Request
    ) -> httpx.Response:
        use = _ConnectionUse(request.extensions.get("trace"))
        request.extensions = {**request.extensions, "trace": use.trace}
        try:
            return await pool.handle_async_request(request)
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            if not (use.reused and _idempotent(request)):
                raise
            log.info(
                "the collector closed a reused connection before answering; sending again",
                method=request.method, path=request.url.path, error=type(exc).__name__,
            )
        request.extensions = {**request.extensions, "trace": _ConnectionUse(None).trace}
        return await pool.handle_async_request(request)

    async def aclose(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        await self._pool.aclose()
        if self._retired:
            await asyncio.gather(*self._retired, return_exceptions=True)


def collector_http_client(
    base_url: str,
    verify: ssl.SSLContext | bool,
    settings: AgentSettings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    max_connections: int = 10,
    network: NetworkChanges | None = None,
) -> httpx.AsyncClient:
    """An ``AsyncClient`` for ``base_url`` with the timeouts and keep-alive in the docstring.

    ``network`` tells it when routes change (its pool then starts afresh).
    ``transport`` replaces the network (tests); it is used as given, without the recoveries.
    """
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=settings.keepalive_expiry_s,
    )
    if transport is None:
        transport = CollectorTransport(
            lambda: httpx.AsyncHTTPTransport(verify=verify, limits=limits), network
        )
    return httpx.AsyncClient(
        base_url=base_url,
        transport=transport,
        timeout=httpx.Timeout(settings.http_timeout_s, connect=settings.connect_timeout_s),
        headers={"User-Agent": f"courtguard-agent/{__version__}"},
    )


def collector_client(
    credentials: Credentials,
    settings: AgentSettings,
    transport: Any = None,
    network: NetworkChanges | None = None,
) -> httpx.AsyncClient:
    """The enrolled agent's client: its collector's URL, and its CA pinned (https)."""
    from agent.enrollment import ca_path, ssl_context

    verify: ssl.SSLContext | bool = False
    if credentials.collector_url.startswith("https://"):
        verify = ssl_context(ca_path(settings.data_dir))
    return collector_http_client(
        credentials.collector_url, verify, settings, transport=transport, network=network
    )
