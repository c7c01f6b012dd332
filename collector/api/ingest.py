"""What agents call: enrollment and event batches."""

from __future__ import annotations

import time
import uuid
from functools import partial

import structlog
from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from agent.events import ACCEPTS_HEADER, CaptureOrder, EnrollRequest, IngestResult, utcnow
from collector.api.auth import require_agent
from collector.api.batch import AgentMismatch, parse_batch
from collector.api.body import decode, read_limited
from collector.api.context import Context, context
from collector.api.responses import json_response, validation_errors
from collector.errors import ApiError, InvalidEventsError, RefusedError, StoreError
from collector.isolation.hints import IsolationHints
from collector.releases.hints import ReleaseHints
from collector.store.agents import enroll
from collector.store.events import StoredBatch, store_batch
from collector.store.evidence import pending_orders

log = structlog.get_logger("collector.ingest")
router = APIRouter()

#: An enrollment request is a token and a few names; nothing legitimate is larger.
MAX_ENROLL_BYTES = 64 * 1024


def _require_json(request: Request) -> None:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise ApiError(
            415, "unsupported_media_type",
            f"Content-Type must be application/json, not {media_type or 'missing'}",
        )


@router.post("/api/v1/enroll", status_code=201)
async def enroll_agent(request: Request) -> Response:
    """Spend an enrollment token; answer with the new agent's id and secret."""
    ctx = context(request)
    _require_json(request)
    raw = await read_limited(request, MAX_ENROLL_BYTES)
    try:
        enrollment = EnrollRequest.model_validate_json(raw)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise ApiError(400, "malformed_json", "the body is not valid JSON") from None
        errors = validation_errors(exc.errors(include_input=False))
        raise ApiError(
            422, "invalid_request", "the enrollment request is invalid", errors
        ) from None
    try:
        response = await run_in_threadpool(
            partial(enroll, supersede=ctx.settings.supersede_same_host,
                    client=request.client.host if request.client else None),
            ctx.db, enrollment, utcnow(), ctx.policy_key,
        )
    except RefusedError as exc:
        log.warning("enrollment refused", reason=exc.code, hostname=enrollment.hostname,
                    client=_client(request))
        raise ApiError(401, exc.code, exc.detail) from None
    log.info("agent enrolled", agent_id=str(response.agent_id), hostname=enrollment.hostname,
             group=response.group, client=_client(request),
             superseded=str(response.superseded_agent_id or "") or None)
    # Left out when empty: an agent that predates the field forbids unknown ones.
    left_out = {"superseded_agent_id"} if response.superseded_agent_id is None else set()
    return json_response(response.model_dump(mode="json", exclude=left_out), 201)


@router.post("/api/v1/events")
async def ingest_events(request: Request) -> Response:
    """Store a batch idempotently; every id in the answer may leave the agent's spool."""
    ctx = context(request)
    if ctx.ingest_in_flight >= ctx.settings.ingest_concurrency:
        ctx.metrics.ingest_requests.labels("503").inc()
        raise ApiError(
            503, "overloaded", "the collector is busy; retry after the Retry-After seconds",
            headers={"Retry-After": str(ctx.settings.retry_after_s)},
        )
    ctx.ingest_in_flight += 1
    status = 500
    try:
        agent = await require_agent(request)
        _require_json(request)
        raw = await read_limited(request, ctx.settings.max_body_bytes)
        started = time.perf_counter()
        agent_id = uuid.UUID(agent.id)
        try:
            stored = await run_in_threadpool(
                _decode_and_store, ctx, raw, request.headers.get("content-encoding"), agent_id
            )
        except AgentMismatch as exc:
            log.warning("batch for another agent refused", agent_id=agent.id,
                        claimed_agent_id=str(exc.claimed), client=_client(request))
            raise
        except RefusedError as exc:
            raise ApiError(401, exc.code, exc.detail) from None
        except InvalidEventsError as exc:
            raise ApiError(
                422, "invalid_batch",
                f"the batch does not match the event contract ({len(exc.items)} problems)",
                exc.items,
            ) from None
        except StoreError:
            status = 503  # answered by the StoreError handler
            raise
        ctx.metrics.batch_seconds.observe(time.perf_counter() - started)
        if stored.alert_changes:
            ctx.alert_feed.poke()
        ctx.metrics.events.labels("accepted").inc(len(stored.accepted))
        ctx.metrics.events.labels("duplicate").inc(len(stored.duplicates))
        if stored.gaps_opened:
            ctx.metrics.gaps_opened.inc(stored.gaps_opened)
            log.info("sequence gap detected", agent_id=agent.id, gaps=stored.gaps_opened)
        status = 200
        accepts = {v.strip() for v in request.headers.get(ACCEPTS_HEADER, "").split(",")}
        orders = (await run_in_threadpool(pending_orders, ctx.db, agent.id)
                  if "capture_orders" in accepts else [])
        result = IngestResult(accepted=stored.accepted, duplicates=stored.duplicates,
                              policy_version=await ctx.policies.hint(agent.group),
                              capture_orders=[CaptureOrder.model_validate(o) for o in orders],
                              isolation_sequence=await _isolation_hint(request, agent.id),
                              release_sequence=await _release_hint(request, agent.group))
        # Fields with nothing to say stay out: an agent that predates them still reads the answer.
        left_out: set[str] = set()
        if not result.capture_orders:
            left_out.add("capture_orders")
        if result.isolation_sequence is None:
            left_out.add("isolation_sequence")
        if result.release_sequence is None:
            left_out.add("release_sequence")
        return Response(result.model_dump_json(exclude=left_out), media_type="application/json")
    except ApiError as exc:
        status = exc.status
        raise
    finally:
        ctx.ingest_in_flight -= 1
        ctx.metrics.ingest_requests.labels(str(status)).inc()


def _decode_and_store(
    ctx: Context, raw: bytes, encoding: str | None, agent_id: uuid.UUID
) -> StoredBatch:
    """The blocking half of ingest, run in a worker thread: decode, validate, store."""
    body = decode(raw, encoding, ctx.settings.max_decompressed_bytes)
    batch = parse_batch(body, agent_id, ctx.settings.max_batch_events)
    return store_batch(ctx.db, str(agent_id), batch.events, utcnow())


async def _isolation_hint(request: Request, agent_id: str) -> int | None:
    hints: IsolationHints | None = getattr(request.app.state, "isolation_hints", None)
    return None if hints is None else await hints.for_agent(agent_id)


async def _release_hint(request: Request, group: str) -> int | None:
    hints: ReleaseHints | None = getattr(request.app.state, "release_hints", None)
    return None if hints is None else await hints.for_group(group)


def _client(request: Request) -> str:
    return f"{request.client.host}:{request.client.port}" if request.client else "unknown"
