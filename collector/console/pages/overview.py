"""The overview (安全态势总览, the landing page), its live part and its change stream.

``/console/overview`` is the whole page. ``/console/overview/live`` is the
same body without the chrome; the page's script fetches it whenever
``/console/overview/stream`` (server-sent events) says the alert feed moved,
so a new alert shows without a reload. The stream subscribes to the
in-process alert feed (``collector.alerts.feed``), which ingest pokes after
each commit; it ends after ``STREAM_MAX_S`` (the browser reconnects, and the
session is checked again) and at once when the server begins to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import orjson
import structlog
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from agent.events import utcnow
from collector.alerts import service
from collector.api.context import context
from collector.console import charts, data, i18n, notifications, overview
from collector.console.auth import ALL_ROLES
from collector.console.page import SECURITY_HEADERS, Page, open_page, render
from collector.routing.policy import AlertingPolicy

router = APIRouter()
log = structlog.get_logger("collector.console")

#: A stream lasts at most this long; the browser reconnects after ``RETRY_MS``.
STREAM_MAX_S: Final = 300.0
RETRY_MS: Final = 1000
#: A comment line this often keeps proxies from closing an idle stream.
KEEPALIVE_S: Final = 15.0
#: The live part (today, open alerts, the newest alerts) is computed again when the alert
#: feed moved, or after this long in any case.
FRESH_S: Final = 10.0
#: The slow part (7 and 30 days, trends, top lists, fleet, duty) at most this often; it is
#: computed in the background while the previous one is still shown.
SLOW_FRESH_S: Final = 30.0


@dataclass
class OverviewCache:
    """The last computed figures, shared by every viewer."""

    cursor: int = -1
    live_at: float = 0.0
    live: dict[str, Any] = field(default_factory=dict)
    slow_at: float = 0.0
    slow: dict[str, Any] = field(default_factory=dict)
    slow_task: asyncio.Task[None] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class ConsoleStreams:
    """Open change streams; ``close_all`` (the server's shutdown) ends every one at once."""

    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def close_all(self) -> None:
        self.stopping.set()


def streams(app: Any) -> ConsoleStreams:
    found = getattr(app.state, "console_streams", None)
    if found is None:
        found = app.state.console_streams = ConsoleStreams()
    return found


def _cache(app: Any) -> OverviewCache:
    found = getattr(app.state, "overview_cache", None)
    if found is None:
        found = app.state.overview_cache = OverviewCache()
    return found


def _alerting_policy(request: Request) -> AlertingPolicy | None:
    policies = request.app.state.current_policy.get()
    document = policies.section("alerting") if policies is not None else None
    return document if isinstance(document, AlertingPolicy) else None


def compute_live(request: Request, now: datetime) -> dict[str, Any]:
    """Today's figures, the open alerts by severity, the newest high and critical ones and
    whether notifications reach the duty officers."""
    db = context(request).db
    return {
        # The router's clock: the delivery log's times are written by it.
        "notify": notifications.health(db, request.app.state.alert_router.clock(),
                                       _alerting_policy(request),
                                       context(request).settings.notify_channels),
        "cursor": service.latest_change(db),
        "generated_at": now.isoformat(),
        "today": overview.figures(db, now, ("today",), trend=False),
        "findings_today": overview.findings_today(db, now),
        "latest": overview.latest_alerts(db),
    }


def compute_slow(request: Request, now: datetime) -> dict[str, Any]:
    """The 7 and 30 day figures, trends, top lists, fleet health and duty."""
    db = context(request).db
    calendar = request.app.state.work_calendar()
    agents = data.agents_listing(db, request.app.state.monitor, calendar, now)
    return {
        "slow_generated_at": now.isoformat(),
        "periods": overview.figures(db, now, ("7d", "30d"), trend=True),
        "top": overview.top_lists(db, now),
        "fleet": overview.fleet(agents["agents"]),
        "duty": overview.duty_now(_alerting_policy(request), calendar, db, now),
    }


async def current(request: Request) -> dict[str, Any]:
    """The figures: live ones fresh when the feed moved, slow ones refreshed behind the page."""
    cache = _cache(request.app)
    feed = context(request).alert_feed

    async def refresh_slow() -> None:
        cache.slow = await run_in_threadpool(compute_slow, request, utcnow())
        cache.slow_at = time.monotonic()

    async def refresh_slow_behind() -> None:
        try:
            await refresh_slow()
        except Exception as exc:  # the store is down: the page keeps the figures it has
            log.error("overview figures not refreshed", error=str(exc))

    async with cache.lock:
        if not cache.slow:
            await refresh_slow()
        elif time.monotonic() - cache.slow_at > SLOW_FRESH_S and (
                cache.slow_task is None or cache.slow_task.done()):
            cache.slow_task = asyncio.create_task(refresh_slow_behind())
        moved = not feed.ready.is_set() or feed.cursor != cache.cursor
        if moved or not cache.live or time.monotonic() - cache.live_at > FRESH_S:
            cache.live = await run_in_threadpool(compute_live, request, utcnow())
            cache.cursor = feed.cursor if feed.ready.is_set() else cache.live["cursor"]
            cache.live_at = time.monotonic()
        slow, live = cache.slow, cache.live
    return {**slow, **live,
            **overview.merge(slow["periods"], live["today"], live["findings_today"])}


def _view(page: Page, figures: dict[str, Any]) -> dict[str, Any]:
    t = page.t
    return {
        "ov": figures,
        "trends": {pillar: charts.daily_bars(figures["days"],
                                             figures["pillars"][pillar]["trend"])
                   for pillar in overview.PILLARS},
        "pillar_label": lambda name: t(f"pillar.{name}") if i18n.has(f"pillar.{name}")
        else name,
        "window_label": lambda key: t(f"window.{key}"),
        "position_label": lambda key: t(f"position.{key}"),
        "pillars": overview.PILLARS,
        "windows": [key for key, _ in overview.WINDOWS],
        "severities": list(reversed(overview.SEVERITY_NAMES)),
    }


@router.get("/console/overview")
async def overview_page(request: Request) -> Response:
    page = await open_page(request, ALL_ROLES)
    return render(page, request, "overview.html", **_view(page, await current(request)))


@router.get("/console/overview/live")
async def overview_live(request: Request) -> Response:
    """The overview's body alone, for the page's script to swap in."""
    page = await open_page(request, ALL_ROLES)
    return render(page, request, "_overview_live.html", **_view(page, await current(request)))


@router.get("/console/overview/stream")
async def overview_stream(request: Request) -> Response:
    """Server-sent events: ``change`` with ``{"cursor": n}`` whenever the alert feed moves."""
    await open_page(request, ALL_ROLES)
    feed = context(request).alert_feed
    stopping = streams(request.app).stopping

    async def events() -> AsyncIterator[bytes]:
        yield f"retry: {RETRY_MS}\n\n".encode()
        if stopping.is_set():
            return
        async with feed.subscribe() as queue:
            yield _message(feed.cursor)
            deadline = time.monotonic() + STREAM_MAX_S
            while not stopping.is_set() and time.monotonic() < deadline:
                change = asyncio.ensure_future(queue.get())
                stop = asyncio.ensure_future(stopping.wait())
                done, _ = await asyncio.wait(
                    {change, stop}, timeout=min(KEEPALIVE_S, deadline - time.monotonic()),
                    return_when=asyncio.FIRST_COMPLETED)
                for pending in (change, stop):
                    if pending not in done:
                        pending.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await pending
                if change in done:
                    newest = change.result().id
                    while not queue.empty():  # one message for a burst of changes
                        newest = queue.get_nowait().id
                    yield _message(newest)
                elif not stop.done():
                    yield b": keep-alive\n\n"

    headers = {**SECURITY_HEADERS, "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


def _message(cursor: int) -> bytes:
    return b"event: change\ndata: " + orjson.dumps({"cursor": cursor}) + b"\n\n"
