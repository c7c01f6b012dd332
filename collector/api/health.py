"""What load balancers and Prometheus call: /healthz (open) and /metrics.

/metrics needs an API key of any role unless ``[metrics] auth = "none"``; with
``[metrics] listen`` it is served only on that address (``MetricsListener``),
and the main port answers 404.
"""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIServer

import structlog
from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, start_http_server
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from collector.api.context import context
from collector.api.responses import error_response, json_response
from collector.console.auth import ALL_ROLES, require
from collector.errors import ConfigError, StoreError
from collector.metrics import Metrics
from collector.settings import MetricsSettings

log = structlog.get_logger("collector.metrics")
router = APIRouter()


@router.get("/healthz")
async def healthz(request: Request) -> Response:
    """200 when the database answers a trivial query, 503 otherwise."""
    try:
        await run_in_threadpool(context(request).db.ping)
    except StoreError:
        return error_response(503, "unhealthy", "the database does not answer")
    return json_response({"status": "ok"})


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus text exposition of this process's counters and the agents' health."""
    ctx = context(request)
    settings = ctx.settings.metrics
    if settings.listen is not None:
        return error_response(404, "not_found",
                              f"metrics are served on {settings.listen} (settings: [metrics])")
    if settings.auth == "api_key":
        await require(request, ALL_ROLES)
    body = await run_in_threadpool(ctx.metrics.render)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


class MetricsListener:
    """prometheus_client's own HTTP server on ``[metrics] listen``, in a thread of its own."""

    def __init__(self, settings: MetricsSettings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.server: WSGIServer | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        address = self.settings.listen_address
        if address is None:
            return
        host, port = address
        try:
            self.server, self.thread = start_http_server(port, host, self.metrics.registry)
        except OSError as exc:
            raise ConfigError(f"[metrics] listen = {self.settings.listen!r}: cannot listen "
                              f"there ({exc.strerror or exc})") from exc
        log.info("metrics listener ready", url=f"http://{self.settings.listen}/metrics")

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.thread is not None:
            self.thread.join(timeout=10)
        self.server = self.thread = None
