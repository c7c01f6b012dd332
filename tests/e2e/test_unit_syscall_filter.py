"""The agent works under its unit's system call filter (applied with libseccomp, see
tests/syscall_filter.py): enrolled, heartbeating, shipping, and its document child
(rlimits, PR_SET_PDEATHSIG) scanning a watched folder.
"""

from __future__ import annotations

import ctypes.util
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.harness import (
    BIN,
    REPO,
    Agent,
    Collector,
    NotifySocket,
    policies_watching,
    spawn,
    wait_until,
)
from tests.syscall_filter import unit_filter

UNIT = REPO / "systemd" / "courtguard-agent.service"


def _require_filter_tools() -> None:
    missing = [what for what, there in (
        ("systemd-analyze", os.path.exists("/usr/bin/systemd-analyze")),
        ("libseccomp", ctypes.util.find_library("seccomp") is not None),
    ) if not there]
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{', '.join(missing)} missing on CI; scripts/test.sh installs systemd")
        pytest.skip(f"{', '.join(missing)} not installed")


def test_the_filter_is_what_the_unit_says() -> None:
    """Sockets, setrlimit and prctl are allowed; mount and reboot fail with EPERM."""
    _require_filter_tools()
    allowed, error = unit_filter(UNIT)
    assert {"socket", "setsockopt", "setrlimit", "prlimit64", "prctl", "execve"} <= allowed
    assert not {"mount", "reboot", "init_module", "swapon"} & allowed
    assert error == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the filter is the agent's
def test_agent_runs_under_the_units_system_call_filter(
    tmp_path: Path, make_agent: Callable[..., Agent], collector: Collector
) -> None:
    _require_filter_tools()
    folder = tmp_path / "publish"
    folder.mkdir()
    agent = make_agent(policy_dir=str(policies_watching(tmp_path / "policies", [folder])))
    notify = NotifySocket()
    try:
        env = {**agent.env(), "NOTIFY_SOCKET": str(notify.path), "PYTHONPATH": str(REPO)}
        agent.process = spawn(
            "agent under the unit's system call filter",
            [sys.executable, "-m", "tests.syscall_filter", str(UNIT), "--",
             str(BIN / "courtguard-agent"), "run"],
            env, agent.log_file,
        )
        notify.wait_ready(agent.process, "filtered agent", agent.log)
    except BaseException:
        agent.stop(signal.SIGKILL)
        raise
    finally:
        notify.close()
    agent.emit_test(1, note="filtered")
    (folder / "判决书.txt").write_text("民事判决书\n被告钱某的手机号码13812345678。\n",
                                     encoding="utf-8")
    collector.wait_online(agent.agent_id)
    wait_until(lambda: collector.events(agent_id=agent.agent_id, kind="agent.test"), 30,
               "the filtered agent's agent.test event")
    found = wait_until(
        lambda: [e for e in collector.events(agent_id=agent.agent_id)
                 if e["rule_id"] == "documents.mobile-phone"],
        60, "the document finding from the filtered agent's extraction child",
    )
    assert found
    assert agent.process is not None and agent.process.poll() is None
