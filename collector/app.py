"""The FastAPI application: ``create_app(settings)`` wires the store, the API and the monitor."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import structlog
from fastapi import FastAPI

from agent.calendar_cn import WorkCalendar
from collector.alerts.feed import AlertFeed
from collector.api import (
    alerting,
    documents,
    evidence,
    health,
    ingest,
    isolation,
    openapi,
    policy,
    queries,
    releases,
)
from collector.api.body import DEFAULT_MAX_BYTES, BodyLimits
from collector.api.context import Context
from collector.api.responses import install_error_handlers
from collector.calendar_monitor import CalendarMonitor
from collector.console import web as console
from collector.console.auth import LoginThrottle
from collector.console.data import work_calendar
from collector.console.directory import Directory
from collector.console.pages import doccheck as doccheck_page
from collector.correlation.account_pass import AccountPass
from collector.correlation.runner import CorrelationRunner
from collector.correlation.silent_pass import SilentAgentPass
from collector.doccheck.results import ResultCache
from collector.errors import ConfigError
from collector.export.exporter import Exporter
from collector.isolation.hints import IsolationHints
from collector.metrics import Metrics
from collector.patrol.runner import DocumentPatrol
from collector.policy.current import CurrentPolicy
from collector.policy.serving import IdentityCache, PolicyCache
from collector.policy.signing import serving_public_key
from collector.releases.hints import ReleaseHints
from collector.retention import RetentionTask
from collector.routing.links import LinkBase, link_base_url, load_link_key
from collector.routing.router import Router
from collector.settings import CollectorSettings
from collector.store.agents import health_rows
from collector.store.database import Database
from collector.store.leases import LeaseKeeper, claim_owner
from collector.store_statistics import StatisticsTask

log = structlog.get_logger("collector.app")


def _calendar_loader(settings: CollectorSettings) -> Callable[[], WorkCalendar | None]:
    """The site's work calendar, read again only when a policy file changed."""
    directory = settings.effective_policy_dir
    cache: dict[str, Any] = {"signature": None, "calendar": None}

    def load() -> WorkCalendar | None:
        if directory is None:
            return None
        try:
            signature = tuple(sorted((p.name, p.stat().st_mtime_ns)
                                     for p in directory.glob("*.yaml")))
        except OSError:
            signature = ()
        if signature != cache["signature"]:
            cache.update(signature=signature, calendar=work_calendar(directory))
        calendar: WorkCalendar | None = cache["calendar"]
        return calendar

    return load


def create_app(settings: CollectorSettings, db: Database | None = None) -> FastAPI:
    """An app serving ``settings``; it owns ``db`` (made from settings if not given)."""
    # Before anything is opened: a routing collector whose links cannot work refuses to start.
    try:
        links = link_base_url(settings)
    except ConfigError:
        if settings.alert_router:
            raise
        links = LinkBase(settings.url)
    if links.warning and settings.alert_router:
        log.warning("alert links may not open for the duty officers", detail=links.warning)
    database = db if db is not None else Database.from_settings(settings)
    # Every singleton below runs in one collector process at a time (docs/scaling.md).
    lease = timedelta(seconds=settings.lease_s)
    # A stable name: a restarted process renews its predecessor's leases at once.
    owner = claim_owner(settings.data_dir)
    keeper = LeaseKeeper(database, owner.owner, duration=lease, renew_every=lease / 3)
    metrics = Metrics()
    policy_key = serving_public_key(settings.data_dir, database)
    # One view of the policy the collector acts on, shared by every periodic part.
    current_policy = CurrentPolicy(database, settings.effective_policy_dir, policy_key)
    monitor = SilentAgentPass(
        database, metrics, current_policy, settings.silent_check_interval_s,
        settings.default_heartbeat_interval_s,
    )
    retention = RetentionTask(
        database, metrics, settings.heartbeat_retention_days, settings.event_retention_days,
        settings.retention_interval_s, evidence_days=settings.evidence_retention_days,
    )
    statistics = StatisticsTask(database, settings.statistics_interval_s)
    alert_feed = AlertFeed(database)
    link_key = load_link_key(settings.alert_link_secret, settings.data_dir)

    def agent_rows() -> list[dict[str, Any]]:
        # As in the agents listing: the rule follows the policy in every process, not only
        # in the one holding the silent check's lease.
        monitor.reload_rule()
        return health_rows(database)

    metrics.watch_agents(agent_rows, monitor.status_of)
    router = Router(database, current_policy, settings.notify_channels, link_key, links.url,
                    owner=keeper.owner, lease=lease, metrics=metrics)
    checker = documents.DocumentChecker(settings.effective_policy_dir, settings.document_workers)
    patrol = DocumentPatrol(database, checker, settings.patrol, settings.max_document_bytes)

    calendar_monitor = CalendarMonitor(database, current_policy, settings.calendar_check_interval_s)
    correlation = AccountPass(
        database, metrics, current_policy, settings.account_correlation_interval_s
    )
    exporters = [Exporter(database, output, metrics.export, settings.export.gap_wait_s,
                          owner=keeper.owner, lease=lease)
                 for output in settings.export.outputs]

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        tasks = [
            asyncio.create_task(calendar_monitor.run(keeper), name="calendar-monitor"),
            asyncio.create_task(retention.run(keeper), name="retention"),
            asyncio.create_task(statistics.run(keeper), name="planner-statistics"),
            asyncio.create_task(CorrelationRunner([monitor, correlation], leases=keeper).run(),
                                name="correlation"),
            asyncio.create_task(alert_feed.run(), name="alert-feed"),
        ]
        if settings.alert_router:
            tasks.append(asyncio.create_task(router.run(alert_feed), name="alert-router"))
        if settings.patrol.enabled and settings.patrol.sources:
            tasks.append(asyncio.create_task(patrol.run(keeper), name="document-patrol"))
        tasks += [asyncio.create_task(exporter.run(), name=f"export-{exporter.name}")
                  for exporter in exporters]
        tasks.append(asyncio.create_task(keeper.run(), name="leases"))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            checker.close(wait=True)
            await asyncio.to_thread(router.close)
            for exporter in exporters:
                await asyncio.to_thread(exporter.close)
            await asyncio.to_thread(keeper.close)
            owner.close()
            database.dispose()

    app = FastAPI(
        title="courtguard collector",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # no interactive docs on a security appliance
        redoc_url=None,
        openapi_url=None,
    )
    app.state.courtguard = Context(
        settings=settings, db=database, metrics=metrics,
        policies=PolicyCache(database, settings.policy_refresh_s, policy_key,
                             current_policy.reporter),
        identities=IdentityCache(settings.identity_cache_s),
        alert_feed=alert_feed,
        policy_key=policy_key,
    )
    app.state.monitor = monitor
    app.state.calendar_monitor = calendar_monitor
    app.state.retention = retention
    app.state.planner_statistics = statistics
    app.state.document_checker = checker
    app.state.document_patrol = patrol
    app.state.doccheck_results = ResultCache()
    app.state.account_correlation = correlation
    app.state.alert_router = router
    app.state.leases = keeper
    app.state.exporters = exporters
    app.state.current_policy = current_policy
    app.state.isolation_hints = IsolationHints(database, settings.policy_refresh_s)
    app.state.release_hints = ReleaseHints(database, settings.policy_refresh_s)
    app.state.alert_link_key = link_key
    app.state.metrics = metrics
    app.state.metrics_listener = health.MetricsListener(settings.metrics, metrics)
    install_error_handlers(app)
    app.add_middleware(BodyLimits, default=DEFAULT_MAX_BYTES, limits={
        "/api/v1/events": settings.max_body_bytes,
        "/api/v1/enroll": ingest.MAX_ENROLL_BYTES,
        "/api/v1/evidence/{event_id}": evidence.MAX_CHUNK_BYTES,
        "/api/v1/documents/check": settings.max_document_bytes,
        "/api/v1/alerts/{action}": queries.MAX_ACTION_BYTES,
        "/console/alerts/action": queries.MAX_ACTION_BYTES,
        "/api/v1/ack/{alert_id}": alerting.ACK_FORM_BYTES,
        "/console/doccheck": doccheck_page.body_limit(settings.max_document_bytes),
    })
    app.include_router(ingest.router)
    app.include_router(evidence.router)
    app.include_router(queries.router)
    app.state.login_throttle = LoginThrottle(settings.console_login_rate_per_min)
    app.state.directory = (Directory(settings.console.ldap)
                           if settings.console.ldap is not None else None)
    app.state.work_calendar = _calendar_loader(settings)
    console.install(app)
    app.include_router(documents.router)
    app.include_router(documents.review_router)
    app.include_router(policy.agent_router)
    app.include_router(isolation.router)
    app.include_router(policy.admin_router)
    app.include_router(releases.agent_router)
    app.include_router(releases.admin_router)
    app.include_router(alerting.admin)
    app.include_router(alerting.public)
    app.include_router(health.router)
    app.include_router(openapi.router)
    return app
