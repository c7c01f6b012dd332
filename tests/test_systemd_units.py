"""The systemd units parse and reference runnable programs (systemd-analyze verify)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[1] / "systemd"
VENV_BIN = Path(sys.executable).parent


@pytest.mark.parametrize("unit", sorted(p.name for p in UNITS.glob("*.service")))
def test_unit_verifies(tmp_path: Path, unit: str) -> None:
    """systemd-analyze verify reports nothing, with ExecStart pointed at this checkout's venv."""
    if shutil.which("systemd-analyze") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("systemd-analyze is missing on CI; scripts/test.sh installs systemd")
        pytest.skip("systemd-analyze is not installed")
    text = (UNITS / unit).read_text(encoding="utf-8")
    assert "/opt/courtguard/venv/bin/" in text
    (tmp_path / unit).write_text(text.replace("/opt/courtguard/venv/bin/", f"{VENV_BIN}/"))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    complaints = [line for line in result.stderr.splitlines() if unit in line]
    assert result.returncode == 0 and not complaints, result.stderr


@pytest.mark.parametrize("unit", sorted(p.name for p in UNITS.glob("*.service")))
def test_unit_is_hardened(unit: str) -> None:
    """Each daemon notifies systemd, is watched, restarts, and runs with a narrowed sandbox."""
    text = (UNITS / unit).read_text(encoding="utf-8")
    for line in (
        "Type=notify",
        "Restart=always",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
    ):
        assert line in text, line
    assert "WatchdogSec=" in text
    assert "CapabilityBoundingSet=" in text


def test_agent_unit_grants_exactly_the_capabilities_the_code_uses() -> None:
    """Four capabilities, bounded and ambient alike, each explained; no CAP_AUDIT_READ."""
    text = (UNITS / "courtguard-agent.service").read_text(encoding="utf-8")
    settings = dict(
        line.split("=", 1) for line in text.splitlines()
        if line and not line.startswith("#") and "=" in line
    )
    wanted = {"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_DAC_READ_SEARCH", "CAP_SYS_PTRACE"}
    assert set(settings["CapabilityBoundingSet"].split()) == wanted
    assert set(settings["AmbientCapabilities"].split()) == wanted
    comments = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    for capability in wanted:
        assert f"#   {capability}" in comments, capability
    assert "CAP_AUDIT_READ" not in settings["CapabilityBoundingSet"]
    assert "sniffer" not in comments
    assert "SystemCallFilter=@system-service" in text


def test_agent_unit_waits_for_enrollment_and_stops_at_a_held_data_dir() -> None:
    """Neither credentials nor a preseed: skipped, not restarted; exit 3 is not retried."""
    from agent.enrollment import credentials_path
    from agent.errors import EXIT_ALREADY_RUNNING
    from agent.settings import AgentSettings

    text = (UNITS / "courtguard-agent.service").read_text(encoding="utf-8")
    defaults = AgentSettings.model_fields
    data_dir = defaults["data_dir"].default
    enroll_file = defaults["enroll_file"].default
    assert f"ConditionPathExists=|{credentials_path(data_dir)}" in text
    assert f"ConditionPathExists=|{enroll_file}" in text
    assert f"RestartPreventExitStatus={EXIT_ALREADY_RUNNING}" in text
