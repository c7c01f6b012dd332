"""Turn a decoded request body into a validated ``EventBatch`` for one authenticated agent.

The common case (a body under a megabyte) is validated straight from bytes with
a cached ``TypeAdapter``. Larger bodies, and bodies that fail validation, are
first parsed with orjson so that an oversized batch (413) or a batch written
for another agent (403) is refused for that reason, cheaply, before pydantic
walks every event.

JSON the fast parsers refuse only for one value inside one event (a lone
surrogate escape, nesting past their depth limit) is parsed again with the
standard library, so the contract refuses that event by its index (422) and
the agent can set it aside instead of resending the whole batch forever.

Kinds only the collector concludes (its own ``collector.*`` events and the
correlators' ``agent.silent``, ``account.shared`` …) are refused by index too:
an agent that sends one would forge the collector's verdict.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Final

import orjson
from pydantic import TypeAdapter, ValidationError

from agent.events import EventBatch
from collector.correlation.registry import made_by_collector
from collector.errors import ApiError

BATCH: Final = TypeAdapter(EventBatch)
#: Bodies above this are parsed with orjson and pre-checked before validation.
PRECHECK_BYTES: Final = 1024 * 1024
#: At most this many validation errors are returned to the client.
MAX_REPORTED_ERRORS: Final = 100


class AgentMismatch(ApiError):
    """A batch claims another agent's id; ``claimed`` is that id, for the log."""

    def __init__(self, claimed: uuid.UUID) -> None:
        super().__init__(
            403, "agent_mismatch",
            "the batch names an agent other than the one whose credentials were sent",
        )
        self.claimed = claimed


def _too_many(count: int, limit: int) -> ApiError:
    return ApiError(
        413, "batch_too_large",
        f"the batch has {count} events; this collector takes at most {limit} per batch",
    )


def _malformed(reason: str) -> ApiError:
    return ApiError(400, "malformed_json", f"the body is not valid JSON: {reason}")


def _precheck(data: Any, agent_id: uuid.UUID, max_events: int) -> None:
    """Refuse oversized batches and foreign agent ids from the parsed JSON, before validation."""
    if not isinstance(data, dict):
        return
    events = data.get("events")
    events = events if isinstance(events, list) else []
    if len(events) > max_events:
        raise _too_many(len(events), max_events)
    claimed = [data.get("agent_id")]
    claimed += [event.get("agent_id") for event in events if isinstance(event, dict)]
    for value in claimed:
        if not isinstance(value, str):
            continue
        try:
            other = uuid.UUID(value)
        except ValueError:
            continue  # validation names the bad value
        if other != agent_id:
            raise AgentMismatch(other)


def _loads_leniently(body: bytes) -> Any:
    """The body as the standard library parses it, or None when it is not JSON at all."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def _seq_reused(batch: EventBatch) -> ApiError | None:
    items = [
        {"index": index, "loc": ["seq"],
         "msg": f"seq {batch.events[index].seq} is used by an earlier event of this batch"}
        for index in batch.repeated_seqs()[:MAX_REPORTED_ERRORS]
    ]
    if not items:
        return None
    return ApiError(
        422, "invalid_batch",
        f"the batch does not match the event contract ({len(items)} problems)", items,
    )


def _collector_kinds(batch: EventBatch) -> ApiError | None:
    """Events of a kind only the collector concludes (``agent.silent``, ``account.shared``, …)."""
    items = [
        {"index": index, "loc": ["kind"],
         "msg": f"kind {event.kind} is concluded by the collector; an agent may not send it"}
        for index, event in enumerate(batch.events) if made_by_collector(event.kind)
    ][:MAX_REPORTED_ERRORS]
    if not items:
        return None
    return ApiError(
        422, "invalid_batch",
        f"the batch does not match the event contract ({len(items)} problems)", items,
    )


def _invalid(exc: ValidationError) -> ApiError:
    items: list[dict[str, Any]] = []
    for error in exc.errors(include_url=False, include_input=False)[:MAX_REPORTED_ERRORS]:
        loc = list(error["loc"])
        item: dict[str, Any] = {}
        if len(loc) >= 2 and loc[0] == "events" and isinstance(loc[1], int):
            item["index"] = loc[1]
            loc = loc[2:]
        item["loc"] = [p if isinstance(p, int) else str(p) for p in loc]
        item["msg"] = str(error["msg"])
        items.append(item)
    return ApiError(
        422, "invalid_batch",
        f"the batch does not match the event contract ({exc.error_count()} problems)", items,
    )


def parse_batch(body: bytes, agent_id: uuid.UUID, max_events: int) -> EventBatch:
    """Validate ``body`` as the batch of ``agent_id``; raise ApiError 400, 403, 413 or 422."""
    if len(body) > PRECHECK_BYTES:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            data = _loads_leniently(body)
            if data is None:
                raise _malformed(str(exc)) from None
        _precheck(data, agent_id, max_events)
        try:
            batch = BATCH.validate_python(data)
        except ValidationError as exc:
            raise _invalid(exc) from None
    else:
        try:
            batch = BATCH.validate_json(body)
        except ValidationError as exc:
            json_error = next((e for e in exc.errors() if e["type"] == "json_invalid"), None)
            if json_error is not None:
                batch = _lenient_batch(body, agent_id, max_events, str(json_error["msg"]))
            else:
                try:
                    data = orjson.loads(body)
                except orjson.JSONDecodeError:
                    data = None  # JSON orjson cannot hold (e.g. huge integers): report validation
                _precheck(data, agent_id, max_events)
                raise _invalid(exc) from None
    if len(batch.events) > max_events:
        raise _too_many(len(batch.events), max_events)
    if batch.agent_id != agent_id:
        raise AgentMismatch(batch.agent_id)
    refused = _seq_reused(batch) or _collector_kinds(batch)
    if refused is not None:
        raise refused
    return batch


def _lenient_batch(body: bytes, agent_id: uuid.UUID, max_events: int, reason: str) -> EventBatch:
    """Validate a body the fast parser refused; 400 unless the standard library can parse it."""
    data = _loads_leniently(body)
    if data is None:
        raise _malformed(reason)
    _precheck(data, agent_id, max_events)
    try:
        return BATCH.validate_python(data)
    except ValidationError as exc:
        raise _invalid(exc) from None
