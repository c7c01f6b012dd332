"""The console's own script, style and image files, and ``/console`` itself."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from collector.console.auth import CLERK, CLERK_HOME, principal
from collector.console.page import HERE, STATIC_TYPES

router = APIRouter()


@router.get("/console/static/{name}")
async def static(name: str) -> Response:
    path = HERE / "static" / name
    kind = STATIC_TYPES.get(path.suffix)
    if kind is None or "/" in name or not path.is_file():
        return Response("not found", 404, media_type="text/plain")
    return Response(path.read_bytes(), media_type=kind,
                    headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"})


@router.get("/console")
@router.get("/console/")
async def home(request: Request) -> Response:
    """The overview; a clerk, who may open no other page, goes to the document check."""
    who = await principal(request)
    return RedirectResponse(CLERK_HOME if who and who.role in CLERK else "/console/overview", 303)
