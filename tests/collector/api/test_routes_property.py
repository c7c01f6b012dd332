"""No route answers 5xx, whatever values its path and query parameters carry.

Hypothesis generates values for every route in the app's route table: its
path parameters, the query parameters FastAPI declares for it, and every
query parameter the API and the console read by hand (found in their
source). Values lean to what broke before: integers past 64 bits, times and
dates at the edges of ``datetime``'s range with odd offsets, NUL and
non-ASCII text. Requests carry an admin API key, so they reach the handlers'
real work, against a real store on SQLite and on PostgreSQL (whose limits
differ). Derandomized with a bounded number of examples per route, so a run
is repeatable and takes about a minute per backend.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import hypothesis.strategies as st
import pytest
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, given, settings

from collector.app import create_app
from collector.settings import CollectorSettings
from collector.store.database import Database
from tests.collector.conftest import TestClient

SOURCES = [*Path(__file__).resolve().parents[3].glob("collector/api/*.py"),
           *Path(__file__).resolve().parents[3].glob("collector/console/*.py")]
#: Query parameters a handler reads itself (``params.get("date")``, ``when(params, "since")``).
READ_BY_HAND = re.compile(
    r'(?:params|query_params|\bq)\.get(?:list)?\("(\w+)"|(?:text|when|split)\(params, "(\w+)"'
    r'|"(\w+)" (?:not )?in params')
EXAMPLES_PER_ROUTE = 25


def hand_read_names() -> set[str]:
    names: set[str] = set()
    for source in SOURCES:
        for match in READ_BY_HAND.finditer(source.read_text()):
            names.update(group for group in match.groups() if group)
    return names


def _offsets() -> st.SearchStrategy[timezone]:
    return st.integers(-23 * 60 - 59, 23 * 60 + 59).map(
        lambda minutes: timezone(timedelta(minutes=minutes)))


def _times() -> st.SearchStrategy[str]:
    edges = st.sampled_from([datetime.min, datetime.max, datetime(1970, 1, 1),
                             datetime(8999, 12, 31, 23, 59), datetime(9000, 1, 1)])
    naive = st.one_of(edges, st.datetimes())
    return st.one_of(
        naive.map(lambda t: t.isoformat()),
        st.tuples(naive, _offsets()).map(lambda p: p[0].replace(tzinfo=p[1]).isoformat()),
        st.dates().map(lambda d: d.isoformat()),
    )


def _integers() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from([2**31, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30, 0, -1]),
        st.integers(min_value=-(2**70), max_value=2**70),
    ).map(str)


def _texts() -> st.SearchStrategy[str]:
    odd = st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Z", "Cc"))
    return st.one_of(
        st.text(odd, max_size=40),
        st.sampled_from(["\x00", "é", "a\x00b", "%", "_", "'", "..", "x" * 3000, "true",
                         "false", "day", "month", "spc-2016", "new,closed"]),
    )


def _cursors() -> st.SearchStrategy[str]:
    """Cursors as the API encodes them, around values past what the store holds."""
    import base64
    import json

    parts = st.lists(st.one_of(_times(), st.integers(-(2**64), 2**64), st.uuids().map(str)),
                     min_size=1, max_size=2)
    return parts.map(lambda values: base64.urlsafe_b64encode(
        json.dumps(values).encode()).decode().rstrip("="))


VALUES = st.one_of(_integers(), _times(), _texts(), _cursors())


def routes(app: Any) -> list[tuple[str, APIRoute]]:
    """(method, route) for every path operation, through included routers too."""
    found = []
    pending = list(app.routes)
    while pending:
        route = pending.pop(0)
        if isinstance(route, APIRoute):
            found.extend((method, route) for method in sorted(route.methods) if method != "HEAD")
        # FastAPI keeps an included router as one entry holding the original router.
        included = getattr(route, "original_router", None)
        pending.extend(getattr(included, "routes", []))
    return found


def request_for(method: str, route: APIRoute, path_values: dict[str, str],
                query: list[tuple[str, str]]) -> tuple[str, str, str]:
    path = route.path_format
    for name, value in path_values.items():
        path = path.replace("{" + name + "}", quote(value, safe="") or "0")
    query_string = "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in query)
    return method, path, query_string


def property_of(client: TestClient, headers: dict[str, str], method: str, route: APIRoute,
                query_names: list[str]) -> Any:
    """The property for one route: no generated path or query values make it answer 5xx."""

    @settings(max_examples=EXAMPLES_PER_ROUTE, deadline=None, derandomize=True,
              database=None, suppress_health_check=list(HealthCheck))
    @given(path_values=st.fixed_dictionaries({n: VALUES for n in sorted(route.param_convertors)}),
           query=st.lists(st.tuples(st.sampled_from(query_names), VALUES), max_size=4))
    def no_server_error(path_values: dict[str, str], query: list[tuple[str, str]]) -> None:
        verb, path, query_string = request_for(method, route, path_values, query)
        url = f"{path}?{query_string}" if query_string else path
        # Streamed, so a server-sent event stream (it ends only when the server stops) is
        # judged on its status line; every other body is read for the failure message.
        with client.stream(verb, url, headers=headers, content=b"",
                           follow_redirects=False) as response:
            streaming = response.headers.get("content-type", "").startswith(
                "text/event-stream")
            body = "" if streaming else response.read().decode(errors="replace")
        assert response.status_code < 500, (verb, url, response.status_code, body[:300])

    return no_server_error


def check_every_route(client: TestClient, headers: dict[str, str]) -> list[str]:
    """Each route with generated parameters; the routes covered, for the test to check."""
    app: Any = client.app
    query_names = sorted(hand_read_names() | {
        param.name for _m, route in routes(app) for param in route.dependant.query_params})
    covered = []
    for method, route in routes(app):
        property_of(client, headers, method, route, query_names)()
        covered.append(f"{method} {route.path}")
    return covered


@pytest.fixture
def lenient_client(settings: CollectorSettings, db: Database) -> Any:
    """A client that returns a 500 as a response, so the failing example is reported."""
    with TestClient(create_app(settings, db), raise_server_exceptions=False) as test_client:
        yield test_client


def test_no_route_answers_5xx(lenient_client: TestClient, admin: dict[str, str]) -> None:
    """Every route, with generated path and query values, answers below 500."""
    covered = check_every_route(lenient_client, admin)
    for expected in ("GET /api/v1/alerts/{alert_id}", "GET /console/alerts/{alert_id}",
                     "GET /api/v1/duty", "GET /api/v1/ack/{alert_id}",
                     "POST /api/v1/ack/{alert_id}", "GET /api/v1/reports/summary",
                     "DELETE /api/v1/silences/{silence_id}", "GET /console/audit"):
        assert expected in covered
    assert {"since", "until", "date", "cursor", "limit", "period"} <= hand_read_names()


def test_openapi_is_served_to_admins_only(client: TestClient, admin: dict[str, str]) -> None:
    """Admins get the OpenAPI description; nobody gets it at FastAPI's default paths or docs."""
    for path in ("/openapi.json", "/docs", "/redoc"):
        assert client.get(path).status_code == 404
        assert client.get(path, headers=admin).status_code == 404
    assert client.get("/api/v1/openapi.json").status_code == 401
    answer = client.get("/api/v1/openapi.json", headers=admin)
    assert answer.status_code == 200
    paths = answer.json()["paths"]
    assert "/api/v1/events" in paths and "/api/v1/alerts/{alert_id}" in paths
