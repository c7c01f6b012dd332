"""How a channel is reached: ``notify_channels`` in collector.toml, one table per channel.

Credentials live here, not in the (published) alerting policy. Every URL is
configurable: a court intranet reaches DingTalk or WeCom through a private
deployment (专有钉钉, 政务微信) or a relay in the DMZ, never the public hosts.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from collector.routing.policy import Receiver

ChannelType = Literal["dingtalk", "wecom", "email", "webhook", "sms"]


class ChannelSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: ChannelType
    #: dingtalk: the robot URL with ``access_token``; wecom: with ``key``; webhook, sms: the URL.
    url: str | None = None
    #: dingtalk: the robot's 加签 secret (``SEC...``); requests are signed when it is set.
    secret: str | None = Field(default=None, repr=False)
    #: dingtalk: a security keyword the robot requires in every message.
    keyword: str | None = None
    timeout_s: float = Field(default=5.0, gt=0, le=120)
    #: Token bucket: messages per minute and burst. Robots allow 20 a minute in all.
    rate_per_minute: float = Field(default=18, gt=0, le=6000)
    burst: int = Field(default=2, ge=1, le=1000)
    #: Attempts on this channel before the receiver's next channel is tried.
    max_attempts: int = Field(default=4, ge=1, le=20)
    retry_base_s: float = Field(default=2.0, ge=0, le=3600)
    retry_max_s: float = Field(default=300.0, ge=0, le=86_400)
    headers: dict[str, str] = Field(default_factory=dict)
    #: email: the relay, its port, STARTTLS (on by default), login, sender, CA to trust.
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    starttls: bool = True
    username: str | None = None
    password: str | None = Field(default=None, repr=False)
    sender: str = "courtguard@localhost"
    ca_file: Path | None = None
    to: list[str] = Field(default_factory=list)
    #: sms: the text sent ({title}, {text}, {link}) and the request body's fields
    #: ({mobiles}: comma-separated, {content}: the text); ``form`` posts them form-encoded.
    template: str = "【网络安全值班】{title}。{text} {link}"
    body: dict[str, str] = Field(
        default_factory=lambda: {"mobiles": "{mobiles}", "content": "{content}"}
    )
    body_format: Literal["json", "form"] = "json"
    max_sms_chars: int = Field(default=300, ge=20, le=2000)

    @model_validator(mode="after")
    def _needs(self) -> ChannelSettings:
        if self.type == "email":
            if not self.smtp_host:
                raise ValueError("an email channel needs smtp_host (the internal mail relay)")
        elif not self.url:
            raise ValueError(f"a {self.type} channel needs url")
        return self


def unconfigured_channels(receivers: Mapping[str, Receiver],
                          channels: Mapping[str, ChannelSettings]) -> dict[str, list[str]]:
    """The channels the receivers use that ``notify_channels`` does not define, each with the
    receivers naming it (sorted): every attempt through one of them fails at once."""
    missing: dict[str, set[str]] = {}
    for name, receiver in receivers.items():
        for use in receiver.channels:
            if use.channel not in channels:
                missing.setdefault(use.channel, set()).add(name)
    return {channel: sorted(names) for channel, names in sorted(missing.items())}


def unreachable_receivers(receivers: Mapping[str, Receiver],
                          channels: Mapping[str, ChannelSettings]) -> list[str]:
    """Receivers none of whose channels is defined: nothing sent to them can be delivered."""
    return sorted(name for name, receiver in receivers.items()
                  if all(use.channel not in channels for use in receiver.channels))
