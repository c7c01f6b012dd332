"""Who is asking, and may they: a console session (cookie) or an API key (bearer).

Roles allowed per route are declared where the route is; ``principal`` is the
one place that decides who a request comes from. A session's POSTs must carry
its CSRF token (form field ``csrf`` or header ``X-CSRF-Token``); API keys need
none, since a browser never sends them by itself.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from agent.events import utcnow
from collector import credentials
from collector.api.context import context
from collector.console.sessions import Session, load_session
from collector.errors import ApiError
from collector.store.apikeys import authenticate_api_key
from collector.store.audit import Actor

SESSION_COOKIE: Final = "cg_session"
ALL_ROLES: Final = frozenset({"admin", "reviewer", "auditor"})
TRIAGE: Final = frozenset({"admin", "reviewer"})
AUDIT: Final = frozenset({"admin", "auditor"})
ADMIN: Final = frozenset({"admin"})
#: 书记员: checks documents and sees its own history only; on purpose not in ALL_ROLES, so
#: no page or API route open to the security team's roles opens to a clerk.
CLERK: Final = frozenset({"clerk"})
#: Who may use the document check page and its API: clerks and the security team's triage.
DOCUMENT_CHECK: Final = CLERK | TRIAGE
#: Every role that can sign in (sign-out).
SIGNED_IN: Final = ALL_ROLES | CLERK
#: Where a clerk lands after signing in.
CLERK_HOME: Final = "/console/doccheck"


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    via: str  # console | api
    session: Session | None = None

    def actor(self, request: Request) -> Actor:
        return Actor(self.name, via=self.via, client_address=client_address(request))


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


async def principal(request: Request) -> Principal | None:
    """The API key in ``Authorization``, else the session cookie's user, else None.

    A wrong API key is refused outright (401) rather than falling back to the cookie.
    """
    ctx = context(request)
    header = request.headers.get("authorization")
    if header:
        key = credentials.bearer(header)
        info = await run_in_threadpool(authenticate_api_key, ctx.db, key) if key else None
        if info is None:
            raise ApiError(401, "invalid_credentials", "the API key is not valid",
                           headers={"WWW-Authenticate": "Bearer"})
        return Principal(info.name, info.role, "api")
    session = await run_in_threadpool(
        load_session, ctx.db, request.cookies.get(SESSION_COOKIE), utcnow(),
        idle=timedelta(seconds=ctx.settings.console_idle_timeout_s),
        maximum=timedelta(seconds=ctx.settings.console_session_max_s),
    )
    if session is None:
        return None
    return Principal(session.user.username, session.user.role, "console", session)


async def require(request: Request, roles: frozenset[str]) -> Principal:
    """For the JSON API: 401 without credentials, 403 without one of ``roles``."""
    who = await principal(request)
    if who is None:
        raise ApiError(401, "missing_credentials",
                       "send `Authorization: Bearer <api key>` or sign in to the console",
                       headers={"WWW-Authenticate": "Bearer"})
    if who.role not in roles:
        raise ApiError(403, "forbidden",
                       f"the role {who.role} may not do this; {' or '.join(sorted(roles))} may")
    return who


def check_csrf(who: Principal, presented: str | None) -> None:
    """Sessions must echo their CSRF token on every state change; API keys need not."""
    if who.session is not None and not who.session.csrf_ok(presented):
        raise ApiError(403, "csrf_failed", "the form is stale or did not come from the console; "
                                           "reload the page and try again")


class LoginThrottle:
    """At most ``per_minute`` sign-in attempts per client address in any 60 s (in-process)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._attempts: dict[str, deque[float]] = defaultdict(deque)

    def allow(self, client: str | None) -> bool:
        now = time.monotonic()
        attempts = self._attempts[client or "-"]
        while attempts and now - attempts[0] > 60:
            attempts.popleft()
        if len(attempts) >= self.per_minute:
            return False
        attempts.append(now)
        if len(self._attempts) > 10_000:  # forget idle clients so the map stays bounded
            for key in [k for k, v in self._attempts.items() if not v]:
                del self._attempts[key]
        return True
