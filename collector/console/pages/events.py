"""The events page and one event with its evidence."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from agent.calendar_cn import SHANGHAI
from collector.api import evidence as evidence_api
from collector.console import data, i18n
from collector.console import params as p
from collector.console.auth import ADMIN, ALL_ROLES
from collector.console.page import (
    filter_values,
    next_url,
    open_page,
    render,
    saved_filters,
    submit,
)
from collector.console.sorting import sort_links
from collector.errors import ApiError
from collector.store import evidence as evidence_store
from collector.store.events import DEFAULT_EVENT_ORDER

router = APIRouter()


EVENT_FIELDS: Final = ("since", "until", "min_severity", "host", "account", "rule_id", "q",
                       "agent_id")


@router.get("/console/events")
async def events_page(request: Request) -> Response:
    page = await open_page(request, ALL_ROLES)
    try:
        listing = await run_in_threadpool(data.events_listing, page.db, request.query_params,
                                          SHANGHAI)
        error = None
    except p.FilterError as exc:
        listing, error = {"events": [], "next_cursor": None, "counts": {}, "sort": None}, str(exc)
    current = listing.get("sort") or DEFAULT_EVENT_ORDER
    return render(page, request, "events.html", listing=listing, error=error,
                  filters=filter_values(request, EVENT_FIELDS),
                  next_url=next_url(request, listing["next_cursor"]),
                  saved=await saved_filters(page, "events"),
                  sort_links=sort_links(request, current, SORT_KEYS))


#: The list's columns, each sortable (``EVENT_ORDERS``).
SORT_KEYS: Final = ["time", "severity", "host", "account", "kind", "rule", "summary"]


@router.get("/console/events/{event_id}")
async def event_page(request: Request, event_id: str) -> Response:
    page = await open_page(request, ALL_ROLES)
    detail = await run_in_threadpool(data.event_detail, page.db, event_id)
    if detail is None:
        return render(page, request, "error.html", 404, message=page.t("No such event."))
    artifact = await run_in_threadpool(evidence_store.artifact_of_event, page.db,
                                       detail["event"]["id"])
    return render(page, request, "event.html", **detail, evidence=evidence_rows(
        detail["event"]["evidence"], page.t), artifact=artifact,
        can_capture=page.who.role in ADMIN, capture_error=request.query_params.get("capture"))


#: Why an admin's capture order was refused, by the refusal's code.
CAPTURE_REFUSALS: Final = {
    "evidence_exists": "This event already has a capture, ordered or received.",
    "invalid_request": "This event names no outside address or interface to capture, or the "
                       "duration is not 1 to 300 seconds.",
}


@router.get("/console/events/{event_id}/evidence.pcap")
async def event_pcap(request: Request, event_id: str) -> Response:
    """An admin downloads the event's verified pcap; the download is audited."""
    page = await open_page(request, ADMIN)
    try:
        event_id = str(uuid.UUID(event_id))
        return await evidence_api.pcap_response(request, event_id, page.actor)
    except (ValueError, ApiError):
        return render(page, request, "error.html", 404,
                      message=page.t("This event has no complete evidence capture."))


@router.post("/console/events/{event_id}/capture")
async def order_capture(request: Request, event_id: str) -> Response:
    """An admin orders a capture (抓包取证) on the event's host; back to the event page."""
    page, form = await submit(request, ADMIN)
    try:
        event_id = str(uuid.UUID(event_id))
    except ValueError:
        return render(page, request, "error.html", 404, message=page.t("No such event."))
    try:
        duration = float(str(form.get("duration_s", "30")))
    except ValueError:
        duration = -1.0
    reason = str(form.get("reason", ""))[:2000]
    try:
        await run_in_threadpool(evidence_api.order_capture, request, event_id, duration, reason,
                                page.actor)
        outcome = "ordered"
    except ApiError as exc:
        if exc.code == "event_not_found":
            return render(page, request, "error.html", 404, message=page.t("No such event."))
        outcome = exc.code if exc.code in CAPTURE_REFUSALS else "invalid_request"
    return RedirectResponse(f"/console/events/{event_id}?capture={outcome}#capture", 303)


def evidence_rows(evidence: Any, t: Callable[[str], str], prefix: str = "",
                  depth: int = 0) -> list[tuple[str, str, int]]:
    """Evidence flattened to (label, text, depth) rows; values are text, never markup."""
    rows: list[tuple[str, str, int]] = []
    if isinstance(evidence, Mapping):
        for key, value in evidence.items():
            label = t(f"field.{key}") if i18n.has(f"field.{key}") else str(key)
            if isinstance(value, Mapping | list) and value:
                rows.append((label, "", depth))
                rows.extend(evidence_rows(value, t, f"{prefix}{key}.", depth + 1))
            else:
                rows.append((label, _coded(str(key), value, t), depth))
    elif isinstance(evidence, list):
        for index, value in enumerate(evidence, start=1):
            if isinstance(value, Mapping | list):
                rows.append((f"#{index}", "", depth))
                rows.extend(evidence_rows(value, t, prefix, depth + 1))
            else:
                rows.append((f"#{index}", _text(value), depth))
    return rows


def _coded(key: str, value: Any, t: Callable[[str], str]) -> str:
    """A value that is a code (a verdict, an action, an outcome) in words; others as text."""
    if isinstance(value, str) and i18n.has(f"value.{key}.{value}"):
        return t(f"value.{key}.{value}")
    return _text(value)


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "✓" if value else "✗"
    if isinstance(value, Mapping | list):
        return "-"
    return str(value)
