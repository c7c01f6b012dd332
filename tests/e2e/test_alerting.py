"""Alerting end to end: a real collector over HTTPS, an enrolled agent's events, real receivers.

An event reaching the collector is on the DingTalk robot (signed, @ the duty
officer, over HTTPS trusted through the channel's ``ca_file``) and the
Alertmanager webhook within the group wait (zero here) plus processing; the
robot's message names the officer, the rule and the host, links the alert's
console page, and its signed link acknowledges the alert through the
collector; a notification whose first attempt failed is sent by the
restarted collector after a SIGKILL, exactly once.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.events import utcnow
from collector.routing import duty
from collector.routing.policy import AlertingPolicy
from tests.e2e.harness import (
    POLICIES,
    Agent,
    Collector,
    agent_headers,
    batch_body,
    synthetic_events,
    wait_until,
)
from tests.notify_receivers import RobotReceiver, robot

pytestmark = pytest.mark.e2e


def alerting_policy(directory: Path) -> Path:
    """The shipped policies plus a first route: agent.test alerts, no group wait."""
    target = directory / "policies"
    shutil.copytree(POLICIES, target)
    data = yaml.safe_load((target / "alerting.yaml").read_text())
    data["receivers"]["e2e-robot"] = {"channels": [{"channel": "dingtalk"}]}
    data["receivers"]["e2e-hook"] = {"channels": [{"channel": "hook"}]}
    data["routes"][:0] = [
        {"name": "e2e-hook", "match": {"kinds": ["agent.test"]}, "receiver": "e2e-hook",
         "group_by": ["host"], "group_wait_s": 0, "continue": True},
        {"name": "e2e-robot", "match": {"kinds": ["agent.test"]}, "receiver": "e2e-robot",
         "group_by": ["host"], "group_wait_s": 0, "escalation": "duty-chain"},
    ]
    (target / "alerting.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    return target


@dataclass
class Setup:
    collector: Collector
    dingtalk: RobotReceiver
    hook: RobotReceiver
    credentials: dict[str, Any]
    policy: AlertingPolicy

    def post(self, seq: int, count: int = 1) -> float:
        agent_id = self.credentials["agent_id"]
        events = synthetic_events(agent_id, seq, count, host="ws-e2e-01")
        for index, item in enumerate(events):
            item["evidence"]["note"] = f"alert-{seq + index}"
        started = time.time()
        with self.collector.http() as client:
            response = client.post("/api/v1/events", content=batch_body(agent_id, events),
                                   headers=agent_headers(self.credentials))
        assert response.status_code == 200, response.text
        return started


@pytest.fixture
def setup(tmp_path: Path, database_url: str) -> Iterator[Setup]:
    # The robot is a private deployment (专有钉钉) whose certificate the court's own CA signed.
    with robot("dingtalk", tls_dir=tmp_path / "court-ca") as dingtalk, \
            robot("webhook", script=[500]) as hook:
        instance = Collector(home=tmp_path, database_url=database_url)
        policies = alerting_policy(tmp_path)
        instance.extra_env.update({
            # The restart test SIGKILLs the collector: its router lease must run out
            # (lease_s plus a renewal) before the restarted process may route again.
            "COURTGUARD_COLLECTOR_LEASE_S": "3",
            "COURTGUARD_COLLECTOR_POLICY_DIR": str(policies),
            "COURTGUARD_COLLECTOR_NOTIFY_CHANNELS": json.dumps({
                "dingtalk": {"type": "dingtalk", "url": dingtalk.url, "secret": dingtalk.secret,
                             "ca_file": str(dingtalk.ca_file)},
                "hook": {"type": "webhook", "url": hook.url, "retry_base_s": 3},
            }),
        })
        instance.init()
        instance.start()
        agent = Agent(home=tmp_path / "ws", collector=instance, settings={})
        agent.home.mkdir(parents=True, exist_ok=True)
        agent.enroll()
        credentials = dict(json.loads((agent.data_dir / "credentials.json").read_text()))
        policy = AlertingPolicy.model_validate(
            yaml.safe_load((policies / "alerting.yaml").read_text()))
        try:
            yield Setup(instance, dingtalk, hook, credentials, policy)
        finally:
            instance.stop()


def test_event_to_robot_ack_link_and_restart(setup: Setup) -> None:
    started = setup.post(1)
    wait_until(lambda: setup.dingtalk.accepted(), 15, "the robot's message")
    latency = setup.dingtalk.accepted()[0].at - started
    [message] = setup.dingtalk.accepted()
    staff = duty.on_duty(setup.policy, None, utcnow())
    officer = setup.policy.people[staff.person("on_duty")] if staff else None
    text = message.body["markdown"]["text"]
    if officer is not None and officer.mobile:
        assert message.body["at"]["atMobiles"] == [officer.mobile]
        assert text.endswith(f"值班人员：{officer.name}（@{officer.mobile}）"), text
    assert "规则 agent.test" in text and "主机 ws-e2e-01" in text
    assert latency < 10, latency  # loose: the bench measures; this only catches a stall

    # The webhook answered 500 once: kill the collector before its retry (3 s backoff).
    wait_until(lambda: setup.hook.received, 10, "the webhook's first attempt")
    setup.collector.stop(signal.SIGKILL)
    assert setup.hook.accepted() == []
    setup.collector.start()
    wait_until(lambda: setup.hook.accepted(), 20, "the restarted collector's retry")
    time.sleep(1)
    assert len(setup.hook.accepted()) == 1
    body = setup.hook.accepted()[0].body
    assert body["version"] == "4" and body["alerts"][0]["labels"]["kind"] == "agent.test"
    rows = setup.collector.query(
        "SELECT d.ok, d.status_code FROM deliveries d JOIN notifications n "
        "ON n.id = d.notification_id WHERE n.receiver = 'e2e-hook' ORDER BY d.id")
    assert [tuple(r) for r in rows] == [(False, 500), (True, 200)]

    # The console link opens the alert's own page (after a sign-in), over HTTPS.
    view = re.search(r"\[查看\]\((https://[^)]+)\)", text)
    assert view, text
    view_path = urllib.parse.urlsplit(view.group(1)).path
    assert re.fullmatch(r"/console/alerts/\d+", view_path), view_path
    with setup.collector.http() as client:
        page = client.get(view_path)
        assert page.status_code == 303
        login = urllib.parse.urlencode({"next": view_path})
        assert page.headers["location"] == f"/console/login?{login}"

    # Acknowledge through the signed link, over HTTPS.
    match = re.search(r"\[确认\]\((https://[^)]+)\)", message.body["markdown"]["text"])
    assert match, message.body["markdown"]["text"]
    split = urllib.parse.urlsplit(match.group(1))
    with setup.collector.http() as client:
        page = client.get(f"{split.path}?{split.query}")
        assert page.status_code == 200 and "我已知悉" in page.text
        done = client.post(split.path, content=split.query,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert done.status_code == 200, done.text
    [(status, via)] = [tuple(r) for r in setup.collector.query(
        "SELECT a.status, l.via FROM alerts a JOIN audit_log l ON l.object_id = "
        "CAST(a.id AS VARCHAR(64)) AND l.action = 'alert.acknowledge'")]
    assert (status, via) == ("acknowledged", "signed-link")
