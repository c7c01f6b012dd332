"""Each channel against a real loopback receiver: wording, signatures, trust."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from collector.notify import channels
from collector.notify.config import ChannelSettings
from collector.notify.message import Contact
from tests.collector.notify.messages import ZHANG, alert, message
from tests.notify_receivers import robot, smtp_relay


@pytest.fixture
def http() -> Any:
    with httpx.Client(trust_env=False) as client:
        yield client


def test_dingtalk_signed_markdown_with_mentions(http: httpx.Client) -> None:
    with robot("dingtalk") as receiver:
        settings = ChannelSettings(type="dingtalk", url=receiver.url, secret=receiver.secret)
        outcome = channels.send(message(), settings, http, [])
        assert outcome.ok, outcome
        [got] = receiver.received
        assert got.problem is None
        assert got.body["at"]["atMobiles"] == ["13800000001"]
        assert "@13800000001" in got.body["markdown"]["text"]
        assert "外包账号 wb_zhang" in got.body["markdown"]["text"]


def test_dingtalk_names_the_officer_the_rule_and_the_host(http: httpx.Client) -> None:
    """The person on duty is named, not only @-mentioned, beside the rule id and the host."""
    with robot("dingtalk") as receiver:
        settings = ChannelSettings(type="dingtalk", url=receiver.url, secret=receiver.secret)
        assert channels.send(message(), settings, http, []).ok
        [got] = receiver.accepted()
        text = got.body["markdown"]["text"]
        assert text.endswith("值班人员：张伟（@13800000001）"), text
        assert "规则 accounts.tamper" in text and "主机 ws-it-001" in text


def test_dingtalk_duty_line_survives_truncation(http: httpx.Client) -> None:
    many = message().model_copy(update={"alerts": [
        alert(n, title="外包账号清除了登录日志" * 12) for n in range(1, 21)]})
    with robot("dingtalk") as receiver:
        settings = ChannelSettings(type="dingtalk", url=receiver.url, secret=receiver.secret)
        assert channels.send(many, settings, http, []).ok
        [got] = receiver.accepted()
        text = got.body["markdown"]["text"]
        assert "（已截断）" in text and text.endswith("值班人员：张伟（@13800000001）")


def test_console_link_opens_the_alert_itself() -> None:
    [line] = [x for x in message(7).lines() if "告警 #7" in x]
    assert line.endswith("[查看](http://collector.test/console/alerts/7)")
    assert "http://collector.test/console/alerts/7" in channels.alertmanager_payload(
        message(7))["alerts"][0]["generatorURL"]


def test_dingtalk_wrong_secret_is_refused_and_reported(http: httpx.Client) -> None:
    with robot("dingtalk") as receiver:
        settings = ChannelSettings(type="dingtalk", url=receiver.url,
                                   secret="SECother")  # noqa: S106 (a test robot's secret)
        outcome = channels.send(message(), settings, http, [])
        assert not outcome.ok
        assert outcome.error == "errcode 310000"
        assert "sign mismatch" in (outcome.response or "")


def test_dingtalk_signature_is_url_quoted() -> None:
    """A secret whose HMAC has + / = in base64 still verifies once the URL is decoded."""
    sign = channels.dingtalk_sign("SECtest-secret+/=", 1_700_000_000_000)
    assert "+" not in sign and "/" not in sign


def test_wecom_markdown_with_mentions(http: httpx.Client) -> None:
    with robot("wecom") as receiver:
        settings = ChannelSettings(type="wecom", url=receiver.url)
        assert channels.send(message(), settings, http, []).ok
        [got] = receiver.accepted()
        content = got.body["markdown"]["content"]
        assert content.endswith("值班人员：张伟（<@ZhangWei>）"), content
        assert "规则 accounts.tamper" in content and "主机 ws-it-001" in content


def test_wecom_names_a_person_without_a_wecom_id(http: httpx.Client) -> None:
    wang = Contact(id="wang_qiang", name="王强", mobile="13800000003")
    with robot("wecom") as receiver:
        settings = ChannelSettings(type="wecom", url=receiver.url)
        assert channels.send(message(persons=[wang, ZHANG]), settings, http, []).ok
        [got] = receiver.accepted()
        assert got.body["markdown"]["content"].endswith("值班人员：王强、张伟（<@ZhangWei>）")


def test_webhook_is_alertmanager_v4(http: httpx.Client) -> None:
    with robot("webhook") as receiver:
        settings = ChannelSettings(type="webhook", url=receiver.url)
        assert channels.send(message(), settings, http, []).ok
        [got] = receiver.accepted()
        assert got.body["version"] == "4"
        assert got.body["alerts"][0]["labels"]["alertname"] == "accounts.tamper"
        assert got.body["alerts"][0]["fingerprint"] == f"{1:064x}"
        assert got.body["commonLabels"]["severity"] == "high"


@pytest.mark.parametrize("body_format", ["json", "form"])
def test_sms_gateway_template(http: httpx.Client, body_format: str) -> None:
    with robot("sms") as receiver:
        settings = ChannelSettings(type="sms", url=receiver.url, body_format=body_format,
                                   template="【值班】{title}|{text}|{link}")
        assert channels.send(message(), settings, http, ["13900000000"]).ok
        [got] = receiver.accepted()
        assert got.body["mobiles"] == "13800000001,13900000000"
        assert got.body["content"].startswith("【值班】【高危】新告警")
        assert "http://collector.test/api/v1/ack/1" in got.body["content"]
        assert "规则 accounts.tamper 主机 ws-it-001" in got.body["content"]
        assert "值班人员：张伟" in got.body["content"]


def test_sms_without_a_number_fails_clearly(http: httpx.Client) -> None:
    settings = ChannelSettings(type="sms", url="http://127.0.0.1:9/sms")
    outcome = channels.send(message(persons=[]), settings, http, [])
    assert not outcome.ok and "no mobile" in (outcome.error or "")


def test_email_over_starttls_to_the_relay(tmp_path: Path, http: httpx.Client) -> None:
    with smtp_relay(tmp_path) as relay:
        settings = ChannelSettings(type="email", smtp_host=relay.host, smtp_port=relay.port,
                                   ca_file=relay.ca_file, sender="courtguard@court.example",
                                   to=["audit@court.example"])
        outcome = channels.send(message(), settings, http, [])
        assert outcome.ok, outcome
        [(envelope, mail)] = relay.inbox.messages
        assert relay.inbox.tls_used == [True]
        assert sorted(envelope.rcpt_tos) == ["audit@court.example", "zw@court.example"]
        assert "新告警" in str(mail["Subject"])
        body = mail.get_payload(decode=True).decode()
        assert "wb_zhang" in body and "规则 accounts.tamper" in body
        assert "值班人员：张伟（13800000001）" in body


def test_email_refused_without_trusting_the_relay_certificate(tmp_path: Path,
                                                               http: httpx.Client) -> None:
    with smtp_relay(tmp_path) as relay:
        settings = ChannelSettings(type="email", smtp_host=relay.host, smtp_port=relay.port)
        outcome = channels.send(message(), settings, http, [])
        assert not outcome.ok
        assert "CERTIFICATE_VERIFY_FAILED" in (outcome.error or "")
        assert relay.inbox.messages == []
