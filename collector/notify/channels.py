"""The five channel types: each renders a ``Message`` and sends it once, reporting what came back.

A channel never retries, waits or falls back: the outbox (``collector.notify.outbox``)
does that and logs every attempt. ``send`` returns an ``Outcome`` and raises
nothing for a receiver's failure (timeouts, refusals, errcodes are outcomes).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import smtplib
import ssl
import time
import urllib.parse
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Final

import httpx
import orjson

from collector.notify.config import ChannelSettings
from collector.notify.message import BEIJING, Contact, Message
from collector.notify.transport import CAFileError, trust_context

#: Stored excerpt of a receiver's answer.
EXCERPT: Final = 480
#: WeCom refuses markdown over 4096 bytes; DingTalk's limit is larger but similar in spirit.
MAX_MARKDOWN_BYTES: Final = 4000


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status_code: int | None = None
    response: str | None = None
    error: str | None = None


def excerpt(text: str) -> str:
    return text if len(text) <= EXCERPT else text[:EXCERPT] + "…"


def _fit(text: str, limit: int = MAX_MARKDOWN_BYTES) -> str:
    raw = text.encode()
    if len(raw) <= limit:
        return text
    return raw[: limit - 20].decode(errors="ignore") + "\n\n……（已截断）"


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's 加签: base64 HMAC-SHA256 of ``timestamp\\nsecret`` keyed by the secret, quoted."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(),
                      hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest))


def _post(client: httpx.Client, url: str, settings: ChannelSettings, *,
          json_body: Any = None, form: dict[str, str] | None = None,
          errcode: bool = False) -> Outcome:
    headers = {"Content-Type": "application/json;charset=utf-8"} if form is None else {}
    headers.update(settings.headers)
    try:
        if form is not None:
            response = client.post(url, data=form, headers=headers, timeout=settings.timeout_s)
        else:
            response = client.post(url, content=orjson.dumps(json_body), headers=headers,
                                   timeout=settings.timeout_s)
    except httpx.HTTPError as exc:
        return Outcome(False, error=excerpt(f"{type(exc).__name__}: {exc}"))
    body = excerpt(response.text)
    if not response.is_success:
        return Outcome(False, response.status_code, body, f"HTTP {response.status_code}")
    if errcode:
        try:
            code = orjson.loads(response.content).get("errcode")
        except (orjson.JSONDecodeError, AttributeError):
            return Outcome(False, response.status_code, body, "answer is not the robot's JSON")
        if code != 0:
            return Outcome(False, response.status_code, body, f"errcode {code}")
    return Outcome(True, response.status_code, body)


def _dingtalk_mention(person: Contact) -> str | None:
    # DingTalk highlights (and notifies) only the @mobile / @userId written in the text.
    if person.mobile:
        return f"@{person.mobile}"
    return f"@{person.dingtalk_user_id}" if person.dingtalk_user_id else None


def dingtalk_payload(message: Message, keyword: str | None = None) -> dict[str, Any]:
    duty = message.duty_line(_dingtalk_mention)
    title = message.title()
    text = "\n\n".join([f"### {title}", *message.lines()])
    if keyword and keyword not in text:
        text = f"{keyword}\n\n{text}"
    # The duty line goes last and survives truncation: it carries the mentions.
    text = _fit(text, MAX_MARKDOWN_BYTES - len(duty.encode()) - 2) + "\n\n" + duty
    return {
        "msgtype": "markdown",
        "markdown": {"title": title[:64], "text": text.strip()},
        "at": {"atMobiles": message.mobiles(),
               "atUserIds": [p.dingtalk_user_id for p in message.persons if p.dingtalk_user_id],
               "isAtAll": False},
    }


def send_dingtalk(message: Message, settings: ChannelSettings, client: httpx.Client) -> Outcome:
    assert settings.url is not None  # noqa: S101 (ChannelSettings requires it)
    url = settings.url
    if settings.secret:
        timestamp = round(time.time() * 1000)
        separator = "&" if "?" in url else "?"
        sign = dingtalk_sign(settings.secret, timestamp)
        url = f"{url}{separator}timestamp={timestamp}&sign={sign}"
    return _post(client, url, settings, json_body=dingtalk_payload(message, settings.keyword),
                 errcode=True)


def wecom_payload(message: Message) -> dict[str, Any]:
    """Markdown with ``<@userid>`` mentions (WeCom markdown has no mobile list; text has)."""
    duty = message.duty_line(
        lambda p: f"<@{p.wecom_user_id}>" if p.wecom_user_id else None)
    color = "warning" if message.severity in ("high", "critical") else "comment"
    lines = [f'### <font color="{color}">{message.title()}</font>', *message.lines()]
    # The duty line goes last and survives truncation: it carries the mentions.
    content = _fit("\n".join(lines), MAX_MARKDOWN_BYTES - len(duty.encode()) - 1)
    return {"msgtype": "markdown", "markdown": {"content": f"{content}\n{duty}".strip()}}


def send_wecom(message: Message, settings: ChannelSettings, client: httpx.Client) -> Outcome:
    assert settings.url is not None  # noqa: S101 (ChannelSettings requires it)
    return _post(client, settings.url, settings, json_body=wecom_payload(message), errcode=True)


def alertmanager_payload(message: Message) -> dict[str, Any]:
    """Alertmanager's webhook v4 body, so existing bridges (prometheus-webhook-dingtalk) work."""

    def labels(alert: Any) -> dict[str, str]:
        base = {"alertname": alert.rule_id or alert.kind, "kind": alert.kind,
                "severity": alert.severity, "host": alert.host}
        if alert.account:
            base["account"] = alert.account
        return {**base, **alert.labels}

    alerts = [
        {
            "status": "resolved" if a.status == "closed" else "firing",
            "labels": labels(a),
            "annotations": {"summary": a.title, "count": str(a.count),
                            **({"ack_url": a.ack_url} if a.ack_url else {}),
                            **({"escalation": a.escalated.text()} if a.escalated else {})},
            "startsAt": a.first_seen.isoformat(),
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": message.console_url(a.id) if message.external_url else "",
            "fingerprint": a.fingerprint,
        }
        for a in message.alerts
    ]
    all_labels: list[dict[str, str]] = [labels(a) for a in message.alerts]
    common = ({k: v for k, v in all_labels[0].items()
               if all(other.get(k) == v for other in all_labels)} if all_labels else {})
    return {
        "version": "4",
        "groupKey": message.group_key or message.receiver,
        "truncatedAlerts": 0,
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "receiver": message.receiver,
        "groupLabels": message.group_labels,
        "commonLabels": common,
        "commonAnnotations": {"reason": message.reason, "duty": message.names()},
        "externalURL": message.external_url,
        "alerts": alerts,
    }


def send_webhook(message: Message, settings: ChannelSettings, client: httpx.Client) -> Outcome:
    assert settings.url is not None  # noqa: S101 (ChannelSettings requires it)
    return _post(client, settings.url, settings, json_body=alertmanager_payload(message))


def sms_text(message: Message) -> str:
    """The ``{text}`` of the SMS template: why, which rule and host, who is on duty."""
    first = message.alerts[0] if message.alerts else None
    if first is None:
        return ""
    parts = [first.escalated.text()] if first.escalated else []
    parts.append(f"规则 {first.rule_id or first.kind} 主机 {first.host}"
                 + (f" 账号 {first.account}" if first.account else ""))
    if len(message.alerts) > 1:
        parts.append(f"共 {len(message.alerts)} 条")
    if message.persons:
        parts.append(message.duty_line())
    return "，".join(parts)


def sms_fields(message: Message, settings: ChannelSettings, extra_to: list[str]) -> dict[str, str]:
    link = next((a.ack_url for a in message.alerts if a.ack_url), "") or ""
    content = settings.template.format(title=message.title(), text=sms_text(message), link=link)
    content = content[: settings.max_sms_chars]
    mobiles = ",".join(dict.fromkeys([*message.mobiles(), *extra_to]))
    return {key: value.format(mobiles=mobiles, content=content)
            for key, value in settings.body.items()}


def send_sms(message: Message, settings: ChannelSettings, client: httpx.Client,
             extra_to: list[str]) -> Outcome:
    assert settings.url is not None  # noqa: S101 (ChannelSettings requires it)
    if not message.mobiles() and not extra_to:
        return Outcome(False, error="nobody to text: the duty person has no mobile number")
    fields = sms_fields(message, settings, extra_to)
    if settings.body_format == "form":
        return _post(client, settings.url, settings, form=fields)
    return _post(client, settings.url, settings, json_body=fields)


def email_message(message: Message, settings: ChannelSettings, to: list[str]) -> EmailMessage:
    mail = EmailMessage()
    mail["Subject"] = message.title()
    mail["From"] = settings.sender
    mail["To"] = ", ".join(to)
    when = max((a.last_seen for a in message.alerts), default=None)
    stamp = when.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S（北京时间）") if when else ""
    body = [message.title(), stamp, "", *message.lines()]
    if message.persons:
        body.append(message.duty_line(lambda p: p.mobile))
    mail.set_content("\n".join(body))
    return mail


def send_email(message: Message, settings: ChannelSettings, extra_to: list[str]) -> Outcome:
    to = list(dict.fromkeys([*message.emails(), *settings.to, *extra_to]))
    if not to:
        return Outcome(False, error="nobody to mail: no addresses for the duty person or channel")
    assert settings.smtp_host is not None  # noqa: S101 (ChannelSettings requires it)
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port,
                          timeout=settings.timeout_s) as smtp:
            smtp.ehlo()
            if settings.starttls:
                context = (trust_context(settings.ca_file) if settings.ca_file
                           else ssl.create_default_context())
                smtp.starttls(context=context)
                smtp.ehlo()
            if settings.username:
                smtp.login(settings.username, settings.password or "")
            refused = smtp.send_message(email_message(message, settings, to))
            code, answer = smtp.noop()
    except CAFileError as exc:
        return Outcome(False, error=excerpt(str(exc)))
    except (OSError, smtplib.SMTPException, ssl.SSLError) as exc:
        smtp_code = getattr(exc, "smtp_code", None)
        return Outcome(False, smtp_code if isinstance(smtp_code, int) else None,
                       error=excerpt(f"{type(exc).__name__}: {exc}"))
    accepted = len(to) - len(refused)
    summary = (f"relay accepted {accepted} of {len(to)} recipients; "
               f"{answer.decode(errors='replace')}")
    if refused:
        return Outcome(accepted > 0, code, excerpt(f"{summary}; refused {sorted(refused)}"))
    return Outcome(True, code, excerpt(summary))


def send(message: Message, settings: ChannelSettings, client: httpx.Client,
         extra_to: list[str]) -> Outcome:
    """Deliver ``message`` once through the channel ``settings`` describe."""
    if settings.type == "dingtalk":
        return send_dingtalk(message, settings, client)
    if settings.type == "wecom":
        return send_wecom(message, settings, client)
    if settings.type == "webhook":
        return send_webhook(message, settings, client)
    if settings.type == "sms":
        return send_sms(message, settings, client, extra_to)
    return send_email(message, settings, extra_to)
