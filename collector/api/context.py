"""What every request handler reaches through ``request.app.state.courtguard``."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from collector.alerts.feed import AlertFeed
from collector.metrics import Metrics
from collector.policy.serving import IdentityCache, PolicyCache
from collector.settings import CollectorSettings
from collector.store.database import Database


@dataclass
class Context:
    settings: CollectorSettings
    db: Database
    metrics: Metrics
    policies: PolicyCache
    identities: IdentityCache
    alert_feed: AlertFeed
    #: Base64 public policy key handed out at enrollment; None until `init` made the key.
    policy_key: str | None = None
    ingest_in_flight: int = 0  # requests on the one event loop: a plain int is safe


def context(request: Request) -> Context:
    ctx: Context = request.app.state.courtguard
    return ctx
