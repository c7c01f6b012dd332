"""JSON responses and the handlers that give every error the ``ErrorBody`` shape."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from agent.events import ErrorBody
from collector.errors import ApiError, StoreError

log = structlog.get_logger("collector.api")


def json_response(
    content: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(content), status_code=status, headers=headers, media_type="application/json"
    )


def error_response(
    status: int,
    code: str,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = ErrorBody(error=code, detail=detail, errors=errors)
    return json_response(body.model_dump(exclude_none=True), status, headers)


def _code_for(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "http_error"


def validation_errors(errors: Any) -> list[dict[str, Any]]:
    """Pydantic errors as ErrorBody items: loc and msg, JSON-safe, without echoing input."""
    return [
        {"loc": [p if isinstance(p, int) else str(p) for p in e["loc"]], "msg": str(e["msg"])}
        for e in errors
    ]


async def invalid_request(_request: Request, exc: RequestValidationError) -> Response:
    """422 for parameters FastAPI could not validate: which, and why, without their values."""
    return error_response(
        422, "invalid_request", "the request's parameters or body are invalid",
        validation_errors(exc.errors()),
    )


def install_error_handlers(app: FastAPI) -> None:
    """Make 404, 405, validation failures and unexpected errors answer with an ErrorBody."""

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> Response:
        return error_response(exc.status, exc.code, exc.detail, exc.errors, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else _code_for(exc.status_code)
        if exc.status_code == 404:
            detail = "no such resource; the API lives under /api/v1/"
        elif exc.status_code == 405:
            detail = "this method is not allowed on this resource"
        return error_response(
            exc.status_code, _code_for(exc.status_code), detail,
            headers=dict(exc.headers) if exc.headers else None,
        )

    app.exception_handler(RequestValidationError)(invalid_request)

    @app.exception_handler(StoreError)
    async def _store_down(request: Request, exc: StoreError) -> Response:
        # The database is down or busy, not the request wrong: 503 tells agents to keep
        # their events and retry, where a 500 would make them hunt for a poisoned event.
        log.error("database unavailable", path=request.url.path, error=str(exc))
        retry_after = request.app.state.courtguard.settings.retry_after_s
        return error_response(
            503, "store_unavailable", "the collector's database does not answer; retry later",
            headers={"Retry-After": str(retry_after)},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.error("unhandled error", path=request.url.path, exc_info=exc)
        return error_response(500, "internal_error", "the collector failed; see its log")
