"""Run the collector under uvicorn in this process, and keep systemd informed.

1. build the app and a uvicorn ``Server`` (TLS from the data dir unless ``tls = false``);
   with ``reuse_port = true`` the listening socket is bound here with
   SO_REUSEPORT, so several collector processes on one host share one address
   (the kernel hands each new connection to one of them; docs/scaling.md);
2. once uvicorn listens, log ``collector ready`` with the URL and send ``READY=1``;
3. while it runs, send ``WATCHDOG=1`` at half of ``WatchdogSec`` if systemd asked;
4. on SIGTERM/SIGINT uvicorn stops accepting, finishes in-flight requests and
   runs the lifespan shutdown; we send ``STOPPING=1`` as soon as it begins.
   Idle keep-alive connections are aborted at once (``_Server.shutdown``), so
   a restart with agents connected is not held for ``graceful_shutdown_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import resource
import socket
from typing import Any

import structlog
import uvicorn
from prometheus_client import Counter
from uvicorn.config import HTTP_PROTOCOLS
from uvicorn.importer import import_from_string

from agent import systemd
from collector.api.policy import CONNECTIONS_PER_AGENT, FD_RESERVE
from collector.app import create_app
from collector.errors import ConfigError, StoreError, TLSError
from collector.messages import _
from collector.settings import CollectorSettings
from collector.store.database import Database, redact
from collector.store.migrate import current_revision, head_revision

log = structlog.get_logger("collector.server")

#: Connections the kernel queues before the collector accepts them (capped by
#: net.core.somaxconn): a whole fleet reconnects at once after a network outage.
LISTEN_BACKLOG = 4096


def _tls_options(settings: CollectorSettings) -> dict[str, Any]:
    if not settings.tls:
        return {}
    for path in (settings.server_cert_path, settings.server_key_path):
        if not path.is_file():
            raise TLSError(
                f"{path} is missing; run `courtguard-collector init` or set tls = false"
            )
    return {"ssl_certfile": str(settings.server_cert_path),
            "ssl_keyfile": str(settings.server_key_path)}


class _Server(uvicorn.Server):
    """uvicorn's server, except that shutdown drops idle keep-alive connections at once.

    uvicorn closes an idle connection with ``transport.close()``; over TLS that
    sends close_notify and then waits for the peer's (asyncio's and uvloop's
    ``ssl_shutdown_timeout``, 30 s). An agent's pooled connection is never read
    while idle (its policy poll's, idle for most of ``policy_poll_s``, above
    all), so the answer never comes and a connected agent held the shutdown
    until ``graceful_shutdown_s`` ran out. An idle connection has no
    request to finish, so it is aborted instead (TCP reset, the peer's pool
    discards it). Connections with a request in flight are left to uvicorn,
    which finishes the response and then closes them.
    """

    async def shutdown(self, sockets: list[Any] | None = None) -> None:
        # The console's change streams and the agents' held policy fetches do not finish
        # by themselves: end them first.
        state = getattr(self.config.app, "state", None)
        for name in ("console_streams", "policy_waits"):
            waiting = getattr(state, name, None)
            if waiting is not None:
                waiting.close_all()
        for connection in list(self.server_state.connections):
            # Both uvicorn HTTP protocols (h11, httptools) keep the current request's
            # cycle and the transport under these names; cycle None: no request yet.
            cycle = getattr(connection, "cycle", None)
            transport = getattr(connection, "transport", None)
            if transport is not None and (cycle is None or cycle.response_complete):
                transport.abort()
        await super().shutdown(sockets)


def _shared_socket(settings: CollectorSettings) -> socket.socket:
    """A listening socket other collector processes on this host may bind too."""
    family = socket.AF_INET6 if ":" in settings.listen_host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((settings.listen_host, settings.listen_port))
        sock.listen(LISTEN_BACKLOG)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {settings.listen_host}:{settings.listen_port} with reuse_port: "
            f"{exc.strerror or exc}"
        ) from exc
    sock.setblocking(False)
    return sock


def _check_address_free(settings: CollectorSettings) -> None:
    """Refuse with a sentence when the listen address cannot be bound, before uvicorn would
    log its own error and exit; a reuse_port socket is bound for real in _shared_socket."""
    if settings.reuse_port:
        return
    host, port = settings.listen_host, settings.listen_port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(
                    _("port {port} on {host} is already in use").format(port=port, host=host),
                    hint=_("stop the program using it (`ss -ltnp 'sport = :{port}'` names it), "
                           "or choose another port: listen_port in collector.toml or --port")
                    .format(port=port),
                ) from None
            if exc.errno == errno.EACCES:
                raise ConfigError(
                    _("no permission to listen on port {port}").format(port=port),
                    hint=_("ports below 1024 need root or CAP_NET_BIND_SERVICE; use 8443"),
                ) from None
            raise ConfigError(
                _("cannot listen on {host}:{port}: {reason}").format(
                    host=host, port=port, reason=exc.strerror or exc),
                hint=_("listen_host must be an address of this machine, e.g. 0.0.0.0"),
            ) from None


def _bound_url(settings: CollectorSettings, server: uvicorn.Server) -> str:
    if settings.public_url or settings.listen_port != 0:
        return settings.url
    for listener in getattr(server, "servers", []):
        for sock in listener.sockets:
            host, port = sock.getsockname()[:2]
            scheme = "https" if settings.tls else "http"
            return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"
    return settings.url


async def _supervise(settings: CollectorSettings, server: uvicorn.Server) -> None:
    """Steps 2 and 3: announce readiness, feed the watchdog, announce stopping."""
    while not server.started:
        if server.should_exit:
            return
        await asyncio.sleep(0.05)
    url = _bound_url(settings, server)
    log.info("collector ready", url=url, database=redact(settings.database_url),
             tls=settings.tls)
    systemd.notify(f"READY=1\nSTATUS=serving {url}")
    interval = systemd.watchdog_interval()
    next_ping = 0.0
    loop = asyncio.get_running_loop()
    while not server.should_exit:
        if interval is not None and loop.time() >= next_ping:
            systemd.notify("WATCHDOG=1")
            next_ping = loop.time() + interval
        await asyncio.sleep(0.2)
    systemd.notify("STOPPING=1")
    log.info("collector stopping")


async def _serve(settings: CollectorSettings, server: uvicorn.Server,
                 sockets: list[socket.socket] | None) -> None:
    supervisor = asyncio.create_task(_supervise(settings, server))
    try:
        await server.serve(sockets)
    finally:
        supervisor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await supervisor


def raise_open_file_limit(wanted: int) -> int:
    """Raise this process's soft open-file limit towards ``wanted`` (at most the hard limit,
    which needs no privilege); returns the soft limit now in force.

    Every connection is a file descriptor, and each agent keeps two open (its held policy
    fetch and its ingest connection): the common default of 1,024 would refuse a fleet of a
    few hundred.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return int(soft)


#: Read buffer of each TLS connection: one TLS record at most (16 KiB), not asyncio's 256 KiB.
TLS_READ_BUFFER = 16 * 1024


def smaller_tls_buffers() -> None:
    """Give every TLS connection of this process a 16 KiB read buffer.

    asyncio allocates (and touches) a 256 KiB buffer per TLS connection for its
    whole life; every agent holds a connection open for its policy fetch, so
    that was 281 KiB of memory per agent (41 KiB with this buffer: a process
    holding 1,000 idle TLS connections, measured). A read never returns more
    than one TLS record, 16 KiB, so larger bodies only take more reads.
    """
    from asyncio import sslproto

    if getattr(sslproto.SSLProtocol, "max_size", 0) > TLS_READ_BUFFER:
        sslproto.SSLProtocol.max_size = TLS_READ_BUFFER


def counting_protocol(opened: Counter) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol, counting in ``opened`` every connection it is given.

    asyncio hands a TLS connection to the protocol once its handshake is done, so
    the count is of handshakes completed: what agents that keep their connections
    save (metric ``courtguard_connections_opened_total``).
    """
    base: type[asyncio.Protocol] = import_from_string(HTTP_PROTOCOLS["auto"])

    def connection_made(self: asyncio.Protocol, transport: asyncio.BaseTransport) -> None:
        opened.inc()
        base.connection_made(self, transport)

    return type("CountingHTTPProtocol", (base,), {"connection_made": connection_made})


def serve(settings: CollectorSettings) -> None:
    """Serve until a signal stops us; raise CollectorError for set-up problems."""
    smaller_tls_buffers()
    # Room for the two connections of every agent whose fetch may be held, plus the reserve
    # the policy API keeps free (and as much again for agents polling on their timer).
    wanted = CONNECTIONS_PER_AGENT * settings.policy_held_max + 2 * FD_RESERVE
    limit = raise_open_file_limit(wanted)
    if limit < wanted:
        log.warning("open-file limit below what policy_held_max needs; fewer fetches are held "
                    "and more agents poll on their timer (raise LimitNOFILE)",
                    open_files=limit, policy_held_max=settings.policy_held_max)
    tls = _tls_options(settings)
    _check_address_free(settings)
    db = Database.from_settings(settings)
    current, head = current_revision(db), head_revision()
    if current != head:
        db.dispose()
        raise StoreError(
            f"the database schema is at {current or 'nothing'}, this collector needs {head}; "
            "run `courtguard-collector migrate` (or `init`)"
        )
    if settings.reuse_port:
        try:
            sockets = [_shared_socket(settings)]
        except ConfigError:
            db.dispose()
            raise
    else:
        sockets = None
    try:
        app = create_app(settings, db)
    except BaseException:
        for sock in sockets or ():
            sock.close()
        raise
    config = uvicorn.Config(
        app,
        host=settings.listen_host,
        port=settings.listen_port,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        backlog=LISTEN_BACKLOG,
        http=counting_protocol(app.state.metrics.connections_opened),
        timeout_keep_alive=settings.keep_alive_timeout_s,  # type: ignore[arg-type]  # a float works
        timeout_graceful_shutdown=settings.graceful_shutdown_s,  # type: ignore[arg-type]  # a float works
        **tls,
    )
    server = _Server(config)
    metrics_listener = app.state.metrics_listener
    try:
        metrics_listener.start()
        asyncio.run(_serve(settings, server, sockets))
    finally:
        for sock in sockets or ():
            sock.close()
        metrics_listener.stop()
        systemd.notify("STOPPING=1")
