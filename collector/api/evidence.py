"""Evidence pcaps (取证抓包) over HTTP: agents upload their own, admins order and download.

Agents (``Authorization: Bearer <agent_id>:<secret>``), for their own events only:

- ``POST /api/v1/evidence/{event_id}`` ``{"size", "sha256", "packets"}``: declare the pcap;
  the answer ``{"offset", "size", "complete"}`` says where to resume;
- ``PUT /api/v1/evidence/{event_id}?offset=N`` with the bytes (``application/octet-stream``,
  at most ``MAX_CHUNK_BYTES``): the answer is the same; 409 ``offset_mismatch`` carries the
  offset the collector holds, 422 ``hash_mismatch`` says the file was discarded.

Admins (an API key with the admin role):

- ``POST /api/v1/events/{event_id}/capture`` ``{"duration_s", "reason"}``: order a capture on
  the event's host, sent to the agent in its next ingest answer; audited;
- ``GET /api/v1/events/{event_id}/evidence``: the verified pcap; every download is audited.

The protocol's steps are in ``collector/store/evidence.py``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any, Final

import orjson
from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.responses import Response, StreamingResponse

from agent.events import CaptureOrder, utcnow
from collector.api.auth import require_admin, require_agent
from collector.api.body import read_limited
from collector.api.context import context
from collector.api.responses import json_response
from collector.errors import ApiError, EvidenceError
from collector.store import evidence as store
from collector.store.audit import Actor
from collector.store.events import get_event

router = APIRouter()

#: Largest upload chunk; the agent sends ``evidence_chunk_bytes`` (256 KiB by default).
MAX_CHUNK_BYTES: Final = 4 * 1024 * 1024
#: A declaration or an order is a few numbers and a reason.
MAX_FORM_BYTES: Final = 8 * 1024
SHA256: Final = re.compile(r"^[0-9a-f]{64}$")


def _event_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ApiError(404, "event_not_found", "no such event") from None


def _refused(exc: EvidenceError) -> ApiError:
    errors = None if exc.offset is None else [{"offset": exc.offset}]
    return ApiError(exc.status, exc.code, exc.detail, errors)


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, "malformed_json", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(422, "invalid_request", "the body must be a JSON object")
    return body


def _state(state: store.UploadState) -> Response:
    return json_response({"offset": state.offset, "size": state.size,
                          "complete": state.complete})


@router.post("/api/v1/evidence/{event_id}")
async def open_upload(request: Request, event_id: str) -> Response:
    """Declare one of this agent's pcaps; answer where its upload stands."""
    agent = await require_agent(request)
    event_id = _event_id(event_id)
    body = _json_object(await read_limited(request, MAX_FORM_BYTES))
    size, sha256, packets = body.get("size"), body.get("sha256"), body.get("packets", 0)
    if not (isinstance(size, int) and size > 0 and isinstance(packets, int) and packets >= 0
            and isinstance(sha256, str) and SHA256.match(sha256)):
        raise ApiError(422, "invalid_request",
                       "send size (bytes, > 0), sha256 (64 lowercase hex) and packets (>= 0)")
    ctx = context(request)
    try:
        state = await run_in_threadpool(
            store.open_upload, ctx.db, agent.id, event_id, size=size, sha256=sha256,
            packets=packets, max_bytes=ctx.settings.evidence_max_bytes, now=utcnow())
    except EvidenceError as exc:
        raise _refused(exc) from None
    return _state(state)


@router.put("/api/v1/evidence/{event_id}")
async def append_chunk(request: Request, event_id: str, offset: str = "") -> Response:
    """Take the bytes at ``offset`` of this agent's pcap.

    ``offset`` is read as text and checked after the credentials, so a request
    without them is a 401 whatever its query says.
    """
    agent = await require_agent(request)
    event_id = _event_id(event_id)
    if not (offset.isascii() and offset.isdigit() and len(offset) <= 18):
        raise ApiError(422, "invalid_request", "offset must be an integer >= 0")
    position = int(offset)
    data = await read_limited(request, MAX_CHUNK_BYTES)
    try:
        state = await run_in_threadpool(
            store.append_chunk, context(request).db, agent.id, event_id, position, data, utcnow())
    except EvidenceError as exc:
        raise _refused(exc) from None
    return _state(state)


def capture_order(event: dict[str, Any], duration_s: Any) -> CaptureOrder:
    """The order for an admin's capture on the host of ``event``: its outside peer and link."""
    evidence = event["evidence"] if isinstance(event["evidence"], dict) else {}
    peer, interface = evidence.get("remote_address"), evidence.get("interface")
    try:
        return CaptureOrder(event_id=event["id"], duration_s=duration_s,
                            peer=peer if isinstance(peer, str) else None,
                            interface=interface if isinstance(interface, str) else None)
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]) for e in exc.errors(include_url=False))
        raise ApiError(422, "invalid_request",
                       f"this event cannot be captured: {problems}") from None


def order_capture(request: Request, event_id: str, duration_s: Any, reason: str,
                  actor: Actor) -> str:
    """Store an admin's capture order for ``event_id``; the agent's id. Blocking."""
    db = context(request).db
    event = get_event(db, event_id)
    if event is None:
        raise ApiError(404, "event_not_found", "no such event")
    order = capture_order(event, duration_s)
    try:
        return store.request_capture(db, event_id, order.model_dump(mode="json"), actor,
                                     reason[:2000], utcnow())
    except EvidenceError as exc:
        raise _refused(exc) from None


@router.post("/api/v1/events/{event_id}/capture", status_code=202)
async def request_capture(request: Request, event_id: str) -> Response:
    """An admin orders a capture on the event's host; the agent takes it up at its next batch."""
    key = await require_admin(request)
    event_id = _event_id(event_id)
    body = _json_object(await read_limited(request, MAX_FORM_BYTES))
    reason = body.get("reason", "")
    if not isinstance(reason, str):
        raise ApiError(422, "invalid_request", "reason must be text")
    actor = Actor(key.name, via="api", client_address=_client(request))
    agent_id = await run_in_threadpool(order_capture, request, event_id,
                                       body.get("duration_s", 30), reason, actor)
    return json_response({"event_id": event_id, "agent_id": agent_id, "state": "requested"}, 202)


async def pcap_response(request: Request, event_id: str, actor: Actor) -> Response:
    """The verified pcap of ``event_id`` as a download, audited; 404 when there is none."""
    db = context(request).db
    artifact = await run_in_threadpool(store.artifact_of_event, db, event_id)
    if artifact is None or artifact["state"] != "complete":
        raise ApiError(404, "evidence_not_found", "this event has no complete evidence pcap")
    await run_in_threadpool(store.audit_download, db, event_id, actor, artifact["size"],
                            utcnow())

    async def chunks() -> AsyncIterator[bytes]:
        async for chunk in iterate_in_threadpool(store.read_pcap(db, event_id)):
            yield chunk

    return StreamingResponse(chunks(), media_type="application/vnd.tcpdump.pcap", headers={
        "Content-Disposition": f'attachment; filename="evidence-{event_id}.pcap"',
        "Content-Length": str(artifact["size"]),
        "X-Content-SHA256": artifact["sha256"],
        "Cache-Control": "no-store",
    })


@router.get("/api/v1/events/{event_id}/evidence")
async def download(request: Request, event_id: str) -> Response:
    """An admin downloads the event's verified pcap; the download is audited."""
    key = await require_admin(request)
    actor = Actor(key.name, via="api", client_address=_client(request))
    return await pcap_response(request, _event_id(event_id), actor)


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None
