"""``courtguard-collector init|serve|migrate|prune``, run through main(argv)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa


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


def test_prune_reports_what_it_deleted(cli: Any) -> None:
    """prune runs one retention pass and says what went and what the cut-offs were."""
    cli("init")
    code, out, _ = cli("prune")
    assert code == 0
    assert "pruned 0 heartbeats older than" in out and "0 events older than" in out


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
