"""Duty, silences, the delivery log (admin API key) and the signed acknowledgement link."""

from __future__ import annotations

import html
import urllib.parse
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, Response

from collector.alerts import service
from collector.api.auth import require_admin
from collector.api.bounds import BoundedTime, StoreId, Text, check_id, check_json_text
from collector.api.context import context
from collector.api.responses import json_response
from collector.errors import ApiError
from collector.routing import duty, silences
from collector.routing.links import check_link
from collector.routing.policy import AlertingPolicy
from collector.store.apikeys import ApiKeyInfo
from collector.store.audit import Actor
from collector.store.tables import deliveries, notifications

admin = APIRouter(dependencies=[Depends(require_admin)])
public = APIRouter()
#: The confirmation form holds a name, a time and a signature; nothing legitimate is larger.
ACK_FORM_BYTES = 4096


def _policy(request: Request) -> AlertingPolicy:
    policies = request.app.state.current_policy.get()
    document = policies.section("alerting") if policies is not None else None
    if not isinstance(document, AlertingPolicy):
        raise ApiError(404, "not_found", "no alerting policy is in force (policies/alerting.yaml)")
    return document


def _aware(request: Request, value: datetime | None) -> datetime:
    if value is None:
        return _now(request)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@admin.get("/api/v1/duty")
async def get_duty(request: Request, at: BoundedTime | None = None) -> Response:
    """Who is on duty at ``at`` (default now) and in the shift after it."""
    policy = _policy(request)
    db = context(request).db
    moment = _aware(request, at)

    def read() -> dict[str, Any]:
        current = duty.on_duty(policy, db, moment)
        upcoming = duty.next_on_duty(policy, db, moment)
        return {
            "at": moment.isoformat(),
            "current": duty.describe(policy, current) if current else None,
            "next": duty.describe(policy, upcoming) if upcoming else None,
        }

    return json_response(await run_in_threadpool(read))


def _now(request: Request) -> datetime:
    """The collector's clock (the router's: tests walk it through a key period)."""
    now: datetime = request.app.state.alert_router.clock()
    return now


@admin.get("/api/v1/silences")
async def list_silences(request: Request, ended: bool = False) -> Response:
    now = _now(request)
    found = await run_in_threadpool(silences.list_silences, context(request).db, now, ended)
    return json_response({"silences": [s.public(now) for s in found]})


@admin.post("/api/v1/silences")
async def create_silence(
    request: Request, key: Annotated[ApiKeyInfo, Depends(require_admin)]
) -> Response:
    try:
        body = await request.json()
    except ValueError:
        raise ApiError(400, "bad_request", "the body is not JSON") from None
    try:
        check_json_text(body)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", f"the body's text {exc}") from None
    now = _now(request)
    actor = Actor(key.name, via="api", client_address=_client(request))
    try:
        made = silences.parse_request(body)
        silence = await run_in_threadpool(silences.create, context(request).db, made, actor, now)
    except silences.SilenceError as exc:
        raise ApiError(422, "invalid_request", str(exc)) from None
    return json_response(silence.public(now), 201)


@admin.delete("/api/v1/silences/{silence_id}")
async def expire_silence(
    request: Request, silence_id: Text, key: Annotated[ApiKeyInfo, Depends(require_admin)],
    reason: Text = "",
) -> Response:
    now = _now(request)
    actor = Actor(key.name, via="api", client_address=_client(request))
    try:
        silence = await run_in_threadpool(silences.expire, context(request).db, silence_id,
                                          actor, now, reason)
    except silences.SilenceError as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    return json_response(silence.public(now))


@admin.get("/api/v1/notifications")
async def list_notifications(
    request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> Response:
    """The newest notifications with every delivery attempt and the receiver's answer."""

    def read() -> list[dict[str, Any]]:
        n, d = notifications.c, deliveries.c
        with context(request).db.read() as conn:
            rows = conn.execute(select(n.id, n.receiver, n.reason, n.status, n.alert_ids,
                                       n.persons, n.created_at, n.sent_at, n.sent_channel,
                                       n.digest_id)
                                .order_by(n.id.desc()).limit(limit)).all()
            attempts = conn.execute(select(deliveries).where(
                d.notification_id.in_([r.id for r in rows])).order_by(d.id)).all()
        by_id: dict[int, list[dict[str, Any]]] = {}
        for a in attempts:
            by_id.setdefault(a.notification_id, []).append({
                "channel": a.channel, "attempt": a.attempt, "at": a.at.isoformat(), "ok": a.ok,
                "status_code": a.status_code, "response": a.response, "error": a.error,
                "duration_ms": round(a.duration_ms, 1)})
        return [{"id": r.id, "receiver": r.receiver, "reason": r.reason, "status": r.status,
                 "alert_ids": r.alert_ids, "persons": r.persons,
                 "created_at": r.created_at.isoformat(),
                 "sent_at": r.sent_at.isoformat() if r.sent_at else None,
                 "sent_channel": r.sent_channel, "digest_id": r.digest_id,
                 "deliveries": by_id.get(r.id, [])} for r in rows]

    return json_response({"notifications": await run_in_threadpool(read)})


# -- the signed link ---------------------------------------------------------------------------


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html lang=zh-CN><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>",
        status_code=status, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


def _checked(request: Request, alert_id: int, by: str, exp: int, sig: str) -> None:
    key: bytes = request.app.state.alert_link_key
    verdict = check_link(key, alert_id, by, exp, sig, request.app.state.alert_router.clock())
    if not verdict.ok:
        raise _LinkRefused(verdict.reason)


class _LinkRefused(Exception):
    pass


@public.get("/api/v1/ack/{alert_id}")
async def ack_page(request: Request, alert_id: StoreId, by: str, exp: StoreId,
                   sig: str) -> Response:
    """A confirmation page: chat clients fetch links to preview them, so GET changes nothing."""
    try:
        _checked(request, alert_id, by, exp, sig)
    except _LinkRefused as exc:
        return _page("无法确认告警", f"<p>{html.escape(str(exc))}</p>", 403)
    alert = await run_in_threadpool(service.get_alert, context(request).db, alert_id)
    if alert is None:
        return _page("告警不存在", "<p>该告警已不存在。</p>", 404)
    fields = "".join(
        f'<input type=hidden name={name} value="{html.escape(str(value))}">'
        for name, value in (("by", by), ("exp", exp), ("sig", sig)))
    return _page(
        f"确认告警 #{alert_id}",
        f"<p>{html.escape(alert['title'])}</p><p>主机 {html.escape(alert['host'])}，"
        f"当前状态：{html.escape(alert['status'])}</p>"
        f'<form method=post>{fields}<button type=submit>我已知悉，确认告警</button></form>',
    )


@public.post("/api/v1/ack/{alert_id}")
async def ack_confirm(request: Request, alert_id: StoreId) -> Response:
    """Acknowledge in the name of the person the link was made for (audited, via signed-link)."""
    raw = await request.body()
    form = urllib.parse.parse_qs(raw.decode(errors="replace"))
    by, sig = form.get("by", [""])[0], form.get("sig", [""])[0]
    try:
        exp = check_id(int(form.get("exp", ["0"])[0]))
        _checked(request, alert_id, by, exp, sig)
    except ValueError:
        return _page("无法确认告警", "<p>链接参数不完整</p>", 400)
    except _LinkRefused as exc:
        return _page("无法确认告警", f"<p>{html.escape(str(exc))}</p>", 403)
    actor = Actor(by, via="signed-link", client_address=_client(request))
    try:
        await run_in_threadpool(service.acknowledge, context(request).db, alert_id, actor, by)
    except service.AlertError as exc:
        if exc.code == "invalid_transition":
            return _page("告警已被处理", f"<p>{html.escape(exc.detail)}</p>", 409)
        return _page("无法确认告警", f"<p>{html.escape(exc.detail)}</p>", 404)
    feed = getattr(request.app.state.courtguard, "alert_feed", None)
    if feed is not None:
        feed.poke()
    return _page("告警已确认", f"<p>告警 #{alert_id} 已由 {html.escape(by)} 确认，升级已停止。</p>")
