"""courtguard-collector commands, run through main(argv) against a temporary data dir."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

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


def test_init_makes_the_signing_key_once(cli: Any, tmp_path: Path, database_url: str) -> None:
    """init makes policy-signing.key (0600); again, and on a pre-bundle install, it keeps it."""
    key = tmp_path / "data" / "policy-signing.key"
    assert cli("init")[0] == 0
    assert key.stat().st_mode & 0o777 == 0o600
    before = key.read_bytes()
    code, out, _ = cli("init")
    assert code == 0 and "policy signing key: kept" in out and key.read_bytes() == before
    key.unlink()  # lost key, but the store knows the old one: agents pinned it, so refuse
    code, _, err = cli("init")
    assert code == 1 and "is missing" in err and "Copy policy-signing.key" in err
    assert not key.exists()
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:  # an install from before bundles: no key anywhere
        conn.execute(sa.text("DELETE FROM policy_keys"))
    engine.dispose()
    code, out, _ = cli("init")
    assert code == 0 and "policy signing key: made" in out and "exists already" in out


def test_publish_promote_rollback_status(cli: Any) -> None:
    """The rollout commands number versions, keep notes and authors, and report them."""
    cli("init")
    code, out, err = cli("policy", "publish", str(POLICIES), "--group", "canary", "--note", "试点",
                         "--author", "zhang")
    assert code == 0, err
    assert "策略版本 1" in out and "分组 canary" in out
    assert cli("policy", "promote", "1")[0] == 0
    assert cli("policy", "promote", "2")[0] == 1  # already for every group
    code, out, _ = cli("policy", "rollback", "1", "--note", "撤回")
    assert code == 0 and "策略版本 3" in out
    code, out, _ = cli("policy", "status")
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["版本", "目标分组", "操作"]
    assert lines[1].split()[:3] == ["3", "全部", "rollback"] and "撤回" in lines[1]
    assert lines[3].split()[:3] == ["1", "canary", "publish"] and "zhang" in lines[3]
    code, out, _ = cli("policy", "status", "--json")
    assert code == 0 and '"source_version": 1' in out


def test_publish_refuses_a_bad_directory_and_missing_key(cli: Any, tmp_path: Path) -> None:
    """Nothing is published from a directory with errors, nor without a signing key."""
    cli("migrate")
    assert cli("policy", "publish", str(POLICIES))[2].startswith("error:")
    cli("init")
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = cli("policy", "publish", str(empty))
    assert code == 1 and "没有 *.yaml" in err


def test_agent_group_moves_an_agent(cli: Any) -> None:
    """agent group changes the group; an unknown agent is an error."""
    cli("migrate")
    code, _, err = cli("agent", "group", "0f8fad5b-d9cb-469f-a165-70867728950e", "canary")
    assert code == 1 and "no agent" in err


def test_agent_group_moves_an_enrolled_agent(cli: Any, database_url: str, tmp_path: Path) -> None:
    """agent group updates the stored group of a real enrolled agent."""
    from datetime import UTC, datetime

    from agent.events import EnrollRequest
    from collector.settings import CollectorSettings
    from collector.store.agents import enroll
    from collector.store.database import Database
    from tests.collector.conftest import make_token

    cli("migrate")
    db = Database.from_settings(CollectorSettings(data_dir=tmp_path / "data",
                                                  database_url=database_url))
    request = EnrollRequest(token=make_token(db), hostname="ws-1", agent_version="0.1.0")
    agent_id = str(enroll(db, request, datetime.now(UTC)).agent_id)
    code, out, _ = cli("agent", "group", agent_id, "canary")
    assert code == 0 and "court-a" in out and "canary" in out
    with db.read() as conn:
        group = conn.execute(sa.text("SELECT \"group\" FROM agents")).scalar_one()
    db.dispose()
    assert group == "canary"
