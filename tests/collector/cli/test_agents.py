"""``courtguard-collector agent ...``, run through main(argv)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa


def test_agent_revoke_unknown(cli: Any) -> None:
    """Revoking an unknown agent prints an error line and exits 1."""
    cli("migrate")
    code, _, err = cli("agent", "revoke", "0f8fad5b-d9cb-469f-a165-70867728950e")
    assert code == 1 and "no agent" in err


def test_agent_list_empty(cli: Any) -> None:
    """agent list prints a header when no agent is enrolled."""
    cli("migrate")
    assert cli("agent", "list")[1].startswith("ID")


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
