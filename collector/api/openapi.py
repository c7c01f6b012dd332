"""The collector's OpenAPI description, for administrators who script against the API.

Served only with an admin API key: the route table of a security appliance is
reconnaissance for anyone else. No interactive docs are served at all.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from collector.api.auth import require_admin
from collector.api.responses import json_response

router = APIRouter()


@router.get("/api/v1/openapi.json", include_in_schema=False)
async def openapi_description(request: Request) -> Response:
    """The OpenAPI 3 document of every route, built once per process by FastAPI."""
    await require_admin(request)
    return json_response(request.app.openapi())
