"""courtguard-collector commands, run through main(argv) against a temporary data dir."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from collector.cli import main
from tests.collector.conftest import POLICIES


@pytest.fixture
def cli(tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]) -> Any:
    data_dir = tmp_path / "data"

    def run(*args: str) -> tuple[int, str, str]:
        code = main([*args, "--data-dir", str(data_dir), "--database-url", database_url])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_init_is_idempotent(cli: Any, tmp_path: Path) -> None:
    """init makes TLS, schema and one admin key; run again it keeps them and shows no key."""
    code, out, _ = cli("init")
    assert code == 0 and "cgk_" in out
    tls = tmp_path / "data" / "tls"
    assert (tls / "server.key").stat().st_mode & 0o777 == 0o600
    ca_before = (tls / "ca.pem").read_bytes()
    code, out, _ = cli("init")
    assert code == 0 and "cgk_" not in out and "exists already" in out
    assert (tls / "ca.pem").read_bytes() == ca_before


def test_init_print_key_only(cli: Any) -> None:
    """init --print-key-only prints the new key alone."""
    code, out, _ = cli("init", "--print-key-only")
    assert code == 0 and out.strip().startswith("cgk_") and len(out.strip().splitlines()) == 1


def test_token_create_list_revoke(cli: Any) -> None:
    """A token made with create shows in list and, once revoked, is listed as revoked."""
    cli("migrate")
    code, out, _ = cli("token", "create", "--group", "court-a", "--expires", "7d", "--uses", "2",
                       "--note", "third floor")
    assert code == 0 and "cgt_" in out and "expires" in out
    token_id = out.split()[2]
    code, out, _ = cli("token", "list")
    assert token_id in out and "active" in out and "0/2" in out
    assert cli("token", "revoke", token_id)[0] == 0
    assert "revoked" in cli("token", "list")[1]


def test_token_quiet(cli: Any) -> None:
    """token create --quiet prints only the token."""
    cli("migrate")
    assert cli("token", "create", "--quiet")[1].strip().startswith("cgt_")


def test_revoke_unknown_token(cli: Any) -> None:
    """Revoking an unknown token prints an error line and exits 1."""
    cli("migrate")
    code, _, err = cli("token", "revoke", "nope")
    assert code == 1 and err.startswith("error: no enrollment token")


def test_agent_revoke_unknown(cli: Any) -> None:
    """Revoking an unknown agent prints an error line and exits 1."""
    cli("migrate")
    code, _, err = cli("agent", "revoke", "0f8fad5b-d9cb-469f-a165-70867728950e")
    assert code == 1 and "no agent" in err


def test_apikey_create(cli: Any) -> None:
    """apikey create prints a new key."""
    cli("migrate")
    assert "cgk_" in cli("apikey", "create", "--name", "siem")[1]


def test_agent_list_empty(cli: Any) -> None:
    """agent list prints a header when no agent is enrolled."""
    cli("migrate")
    assert cli("agent", "list")[1].startswith("ID")


def test_missing_config_file(tmp_path: Path) -> None:
    """An explicit config file that does not exist is a one-line error, exit 1, no traceback."""
    result = subprocess.run(
        [sys.executable, "-m", "collector.cli", "--config", str(tmp_path / "nope.toml"), "migrate"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: config file") and "Traceback" not in result.stderr


def test_prune_reports_what_it_deleted(cli: Any) -> None:
    """prune runs one retention pass and says what went and what the cut-offs were."""
    cli("init")
    code, out, _ = cli("prune")
    assert code == 0
    assert "pruned 0 heartbeats older than" in out and "0 events older than" in out


def test_policy_check_exits_non_zero_and_prints_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """policy check: the shipped policies pass with their cases; a broken file fails with lines."""
    assert main(["policy", "check", str(POLICIES), "--cases"]) == 0
    assert "检查通过" in capsys.readouterr().out
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "agent.yaml").write_text(
        (POLICIES / "agent.yaml").read_text().replace("match: {missed_heartbeats: 3}",
                                                      "match: {missed_heartbeat: 3}")
    )
    assert main(["policy", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad / 'agent.yaml'}:16: rules[0](agent.silent).match.missed_heartbeat" in err
    assert "missed_heartbeats" in err
