"""The courtguard-agent command line: emit-test, status, and one-line errors with exit 2."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from agent.cli import main
from agent.events import Event
from agent.settings import AgentSettings
from agent.spool import Spool
from agent.testing import FakeCollector


@pytest.fixture
def env(enrolled: AgentSettings, monkeypatch: pytest.MonkeyPatch) -> AgentSettings:
    """Point the CLI at the enrolled test data dir through the environment."""
    monkeypatch.setenv("COURTGUARD_AGENT_DATA_DIR", str(enrolled.data_dir))
    monkeypatch.setenv("COURTGUARD_AGENT_POLICY_DIR", str(enrolled.policy_dir))
    monkeypatch.setenv("COURTGUARD_AGENT_ALLOW_PLAIN_HTTP", "true")
    return enrolled


def spooled(settings: AgentSettings) -> list[Event]:
    with Spool(settings.spool_path, agent_id=None, host="ws", max_bytes=1 << 26) as spool:
        return [Event.model_validate_json(body) for _, _, body in spool.batch(10_000, 1 << 30)]


def test_emit_test_writes_the_events_asked_for(
    env: AgentSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    """emit-test spools N agent.test events with the severity, note and padding given."""
    code = main(
        ["emit-test", "--count", "3", "--severity", "high", "--note", "检查", "--padding", "100"]
    )
    assert code == 0
    events = spooled(env)
    assert [e.kind for e in events] == ["agent.test"] * 3
    assert {e.severity.value for e in events} == {"high"}
    assert [e.evidence["index"] for e in events] == [0, 1, 2]
    assert all(e.evidence["note"] == "检查" and e.evidence["padding"] == "x" * 100 for e in events)
    assert "wrote 3 agent.test events (seq 1..3)" in capsys.readouterr().out


def test_status_json_reports_enrollment_and_spool(
    env: AgentSettings, collector: FakeCollector, capsys: pytest.CaptureFixture[str]
) -> None:
    """status --json shows the agent id, collector and spool depth."""
    main(["emit-test", "--count", "2"])
    capsys.readouterr()
    assert main(["status", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["enrolled"] is True
    assert report["agent_id"] == str(collector.agent_id)
    assert report["collector"] == "http://collector.test"
    assert report["spool"]["depth"] == 2 and report["spool"]["quarantined"] == 0
    assert report["last_ship"]["result"] is None


def test_status_without_enrollment_says_so(
    settings: AgentSettings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """status on a fresh host reports 'not enrolled' and exits 0 without creating a spool."""
    monkeypatch.setenv("COURTGUARD_AGENT_DATA_DIR", str(settings.data_dir))
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "enrolled:      no" in out
    assert "last ship:     never\n" in out  # not "never at -"
    assert not settings.spool_path.exists()


def test_expected_errors_print_one_line_and_exit_2(
    settings: AgentSettings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """emit-test before enrollment prints one line naming the fix and exits 2, no traceback."""
    monkeypatch.setenv("COURTGUARD_AGENT_DATA_DIR", str(settings.data_dir))
    assert main(["emit-test"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "courtguard-agent enroll" in err


def test_missing_config_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An explicit --config that does not exist is reported, exit 2."""
    assert main(["status", "--config", str(tmp_path / "nope.toml")]) == 2
    assert "nope.toml does not exist" in capsys.readouterr().err


def test_enroll_refuses_plain_http_by_default(
    settings: AgentSettings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """enroll against an http:// collector without allow_plain_http exits 2 and explains."""
    monkeypatch.setenv("COURTGUARD_AGENT_DATA_DIR", str(settings.data_dir))
    code = main(["enroll", "--collector", "http://collector.test", "--token", "t" * 20])
    assert code == 2
    assert "allow_plain_http" in capsys.readouterr().err


def test_padding_above_the_evidence_limit_is_a_usage_error() -> None:
    """--padding beyond 8192 is refused by the argument parser (exit 2)."""
    with pytest.raises(SystemExit) as exit_info:
        main(["emit-test", "--padding", "9000"])
    assert exit_info.value.code == 2


@pytest.mark.parametrize("algorithm", ["ed25519", "sm2"])
def test_status_shows_the_stored_signed_policy(
    settings: AgentSettings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    algorithm: str,
) -> None:
    """status names the verified last good bundle, and the local files before there is one,
    and the signature algorithm pinned at enrollment."""
    from agent.policy.client import last_good_path
    from agent.policy.loader import load_policy_dir
    from agent.testing import PolicySigner, write_credentials

    signer = PolicySigner(algorithm)
    write_credentials(settings.data_dir, FakeCollector(policy_key=signer.public_key))
    monkeypatch.setenv("COURTGUARD_AGENT_DATA_DIR", str(settings.data_dir))
    assert main(["status", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert "no signed bundle" in report["policy"]["summary"]
    assert report["policy_key_algorithm"] == algorithm
    signed = signer.bundle(load_policy_dir(settings.policy_dir).documents, 4, group="canary")
    last_good_path(settings.data_dir).write_bytes(signed.signature.encode() + b"\n" + signed.body)
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "policy:        signed bundle version 4 (group canary" in out
    assert f"policy key:    {algorithm}\n" in out


# Threads that allocate (1 kB blocks go to malloc, not Python's small-object allocator),
# then glibc's own count of its arenas ("Arena N:" lines of malloc_stats, on stderr).
_ARENAS_AFTER_THREADS = """
import ctypes, sys, threading
{prepare}
def allocate():
    blocks = [bytes(1024) for _ in range(2000)]
    barrier.wait()
    del blocks
barrier = threading.Barrier(4)
threads = [threading.Thread(target=allocate) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
ctypes.CDLL(None).malloc_stats()
"""


def _arenas(prepare: str) -> int:
    result = subprocess.run(
        [sys.executable, "-c", _ARENAS_AFTER_THREADS.format(prepare=prepare)],
        capture_output=True, text=True, check=True, timeout=60,
    )
    return sum(1 for line in result.stderr.splitlines() if line.startswith("Arena "))


def test_the_daemon_process_allocates_from_one_malloc_arena() -> None:
    """``run`` limits glibc to one arena before its threads start; without it, threads that
    allocate at once get arenas of their own."""
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("malloc arenas are glibc's")
    assert _arenas("import agent.cli; assert agent.cli.one_malloc_arena()") == 1
    assert _arenas("") > 1
