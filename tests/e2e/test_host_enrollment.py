"""Preseeded enrollment and one identity per host, with real agents and a real collector."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.agent.test_host_identity import fake_sysfs
from tests.e2e.harness import BIN, Agent, Collector, wait_until

pytestmark = pytest.mark.e2e

BOARD_UUID = "4c4c4544-0042-3510-8051-b4c04f4e3332"


def preseed(path: Path, collector: Collector, token: str, *, inline_ca: bool = False,
            **extra: str) -> Path:
    ca = (f'ca_pem = """{collector.ca_file.read_text()}"""' if inline_ca
          else f'ca_file = "{collector.ca_file}"')
    lines = [f'collector_url = "{collector.url}"', ca, f'token = "{token}"',
             *(f'{k} = "{v}"' for k, v in extra.items())]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def preseeded_agent(tmp_path: Path, collector: Collector, name: str, enroll_file: Path,
                    sysfs: Path) -> Agent:
    home = tmp_path / name
    home.mkdir()
    return Agent(home=home, collector=collector, settings={
        "enroll_file": str(enroll_file), "identity_sysfs": str(sysfs), "hostname": "ws-101"})


def agent_id_of(agent: Agent) -> str:
    path = agent.data_dir / "credentials.json"
    wait_until(path.exists, 60, f"{path} written by preseeded enrollment")
    agent.agent_id = json.loads(path.read_text())["agent_id"]
    return agent.agent_id


def records(agent: Agent, event: str) -> list[dict[str, object]]:
    return [r for r in agent.log_records() if r.get("event") == event]


def test_preseeded_agent_waits_for_collector_then_enrolls(
    tmp_path: Path, collector: Collector
) -> None:
    """An agent with a preseed file and no collector retries, then enrolls and runs by itself."""
    token = collector.create_token("--group", "civil", "--uses", "500")
    enroll_file = preseed(tmp_path / "enroll.toml", collector, token, inline_ca=True,
                          group="civil")
    collector.stop()
    agent = preseeded_agent(tmp_path, collector, "ws", enroll_file,
                            fake_sysfs(tmp_path / "sys", BOARD_UUID))
    try:
        agent.start(wait_ready=False)
        wait_until(lambda: len(records(agent, "collector unreachable for preseeded enrollment; "
                                              "retrying")) >= 2,
                   60, "the agent retrying while the collector is down")
        collector.start()
        row = collector.wait_online(agent_id_of(agent), timeout=60)
        assert row["group"] == "civil"
        assert records(agent, "enrolled from preseed file")
    finally:
        agent.stop()


def test_wrong_token_is_reported_once_and_fixed_file_is_taken_up(
    tmp_path: Path, collector: Collector
) -> None:
    """A refused token is logged with its hint; the agent waits for a corrected file."""
    enroll_file = preseed(tmp_path / "enroll.toml", collector, "cgt_wrong-token-0123456789")
    agent = preseeded_agent(tmp_path, collector, "ws", enroll_file,
                            fake_sysfs(tmp_path / "sys", BOARD_UUID))
    try:
        agent.start(wait_ready=False)
        wait_until(lambda: records(agent, "preseeded enrollment refused; fix the preseed file "
                                          "to retry"), 60, "the refusal in the agent's log")
        # A hot loop would ask again within the test pacing's 1 s backoff ceiling.
        time.sleep(3)
        assert collector.log().count("enrollment refused") == 1
        preseed(enroll_file, collector, collector.create_token())
        collector.wait_online(agent_id_of(agent), timeout=60)
        assert collector.log().count("enrollment refused") == 1
    finally:
        agent.stop()


def test_preseed_readable_by_others_is_a_clear_error(tmp_path: Path, collector: Collector) -> None:
    """A token file others can read stops the start with the chmod that fixes it."""
    enroll_file = preseed(tmp_path / "enroll.toml", collector, collector.create_token())
    enroll_file.chmod(0o644)
    agent = preseeded_agent(tmp_path, collector, "ws", enroll_file,
                            fake_sysfs(tmp_path / "sys", BOARD_UUID))
    result = subprocess.run([str(BIN / "courtguard-agent"), "run"], env=agent.env(),
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2
    assert f"chmod 600 {enroll_file}" in result.stderr and "Traceback" not in result.stderr


def test_reimaged_host_supersedes_its_earlier_identity(
    tmp_path: Path, collector: Collector
) -> None:
    """Two data dirs on one host fingerprint: the second enrollment takes the host's place."""
    sysfs = fake_sysfs(tmp_path / "sys", BOARD_UUID)
    enroll_file = preseed(tmp_path / "enroll.toml", collector,
                          collector.create_token("--group", "civil", "--uses", "10"))
    before = preseeded_agent(tmp_path, collector, "before", enroll_file, sysfs)
    after = preseeded_agent(tmp_path, collector, "after", enroll_file, sysfs)
    try:
        before.start()
        old_id = agent_id_of(before)
        collector.wait_online(old_id, timeout=60)
        after.start()  # the re-imaged system: a fresh data dir, the same machine
        new_id = agent_id_of(after)
        collector.wait_online(new_id, timeout=60)
        # 1. the old identity can no longer write, and says why
        wait_until(lambda: "agent_superseded" in before.log(), 60,
                   "the old agent told it was superseded")
        # 2. one line per host, with its predecessor
        listing = [a for a in collector.api("/api/v1/agents")["agents"]
                   if a["hostname"] == "ws-101"]
        assert [a["id"] for a in listing] == [new_id]
        assert [p["id"] for p in listing[0]["predecessors"]] == [old_id]
        # 3. the supersession is an event on the new identity; the old one's events remain
        [event] = collector.events(kind="agent.superseded")
        assert (event["agent_id"], event["evidence"]["previous_agent_id"]) == (new_id, old_id)
        assert collector.events(agent_id=old_id, kind="agent.started")
        # 4. the old identity is never reported silent, however long it stays quiet
        beats_then = len(collector.event_seqs(new_id, "agent.heartbeat"))
        wait_until(lambda: len(collector.event_seqs(new_id, "agent.heartbeat")) >= beats_then + 6,
                   60, "six more heartbeats from the new identity")
        assert collector.events(agent_id=old_id, kind="agent.silent") == []
    finally:
        after.stop()
        before.stop()
