"""Every route's body is bounded before a handler reads it (collector.api.body.BodyLimits).

In process, over TestClient; tests/e2e/test_body_limits.py sends 300 MiB to a
real collector and watches its memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from collector.api.body import DEFAULT_MAX_BYTES
from tests.collector.api.test_routes_property import routes
from tests.collector.conftest import TestClient

#: Routes whose own limit is larger than the default.
OWN_LIMITS = {"/api/v1/events", "/api/v1/documents/check", "/api/v1/alerts/{action}",
              "/console/alerts/action", "/console/doccheck"}


def body_routes(client: TestClient) -> list[tuple[str, str]]:
    """(method, concrete path) of every route that takes a body."""
    found = []
    for method, route in routes(client.app):
        if method in ("POST", "PUT", "PATCH", "DELETE"):
            path = route.path_format
            for name in route.param_convertors:
                path = path.replace("{" + name + "}", "1" if name.endswith("id") else "x")
            found.append((method, path))
    return found


def chunks(total: int, size: int = 16 * 1024) -> Iterator[bytes]:
    block = b"a" * size
    for _ in range(total // size):
        yield block


def _is_413(response: Any) -> None:
    assert response.status_code == 413, response.text
    assert response.json()["error"] == "body_too_large"
    assert response.headers["connection"] == "close"


def test_declared_oversize_is_refused_at_once_on_every_route(client: TestClient) -> None:
    """A Content-Length over the route's limit gets 413 in the ErrorBody shape, unread."""
    routes_found = body_routes(client)
    assert len(routes_found) >= 12
    for method, path in routes_found:
        response = client.request(method, path, content=b"{}",
                                  headers={"Content-Length": str(300 * 1024 * 1024)})
        _is_413(response)


def test_streamed_body_past_the_default_is_413(client: TestClient) -> None:
    """A chunked body is counted as it arrives: the ack form stops after its 4 KiB."""
    form = "application/x-www-form-urlencoded"
    for path, kind in (("/api/v1/ack/1", form), ("/console/login", form),
                       ("/api/v1/enroll", "application/json")):
        _is_413(client.post(path, content=chunks(4 * DEFAULT_MAX_BYTES),
                            headers={"Content-Type": kind}))


def test_anonymous_bodies_never_reach_5xx(client: TestClient) -> None:
    """Small bodies without credentials to every route that takes one: 401, 403 or 413."""
    for method, path in body_routes(client):
        for body, kind in ((b'{"ids": [1]}', "application/json"),
                           (b"by=x&exp=1&sig=00&csrf=x", "application/x-www-form-urlencoded"),
                           (b"x" * (DEFAULT_MAX_BYTES + 1), "application/octet-stream")):
            response = client.request(method, path, content=body,
                                      headers={"Content-Type": kind})
            expected = {401, 403, 413}
            if path == "/api/v1/enroll":  # its credential, the token, is in the body
                expected |= {415, 422}
            if path in OWN_LIMITS and len(body) > DEFAULT_MAX_BYTES:
                expected = {401, 403}
            assert response.status_code in expected, (method, path, response.status_code)


def test_a_body_within_the_route_limit_is_served(client: TestClient,
                                                 admin: dict[str, str]) -> None:
    """Triage may send more than the default: its own limit is larger."""
    ids = list(range(1, 1001))
    response = client.post("/api/v1/alerts/acknowledge", headers=admin,
                           json={"ids": ids, "comment": "说明" * 1000})
    assert response.status_code == 200, response.text
    assert len(response.json()["outcomes"]) == 1000


@pytest.mark.parametrize("path", ["/console/users", "/console/filters"])
def test_unread_streamed_body_closes_the_connection(client: TestClient, path: str) -> None:
    """Answered before its chunked body was read, a request does not keep the connection."""
    response = client.post(path, content=chunks(64 * 1024))
    assert response.status_code == 401
    assert response.headers["connection"] == "close"
