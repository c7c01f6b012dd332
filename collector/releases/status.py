"""How far each release's rollout has gone: for ``release status`` and ``GET /api/v1/releases``.

Per version and architecture: the groups it is the target of now, and of the
agents in those groups how many downloaded it, run it (their heartbeat's
``agent_version``), failed to install it (rolled back by the upgrader) or
refused it, and how many are still pending. The collector learns an agent's
architecture when the agent first asks for a release; until then an agent of
a targeted group counts as targeted by every architecture's release.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from agent.upgrade.versions import runs
from collector.releases.store import ReleaseRow, list_releases, target_for
from collector.store.agents import COLLECTOR_SOURCE_ID
from collector.store.database import Database
from collector.store.tables import agent_upgrades, agents


def release_status(db: Database) -> dict[str, Any]:
    rows = list_releases(db)
    with db.read() as conn:
        fleet = [dict(r._mapping) for r in conn.execute(
            select(agents.c.id, agents.c.group, agents.c.agent_version)
            .where(agents.c.revoked_at.is_(None), agents.c.id != COLLECTOR_SOURCE_ID))]
        progress = [dict(r._mapping) for r in conn.execute(select(
            agent_upgrades.c.agent_id, agent_upgrades.c.version, agent_upgrades.c.state,
            agent_upgrades.c.architecture))]
        arch_of = {p["agent_id"]: p["architecture"] for p in progress if p["architecture"]}
        groups = {a["group"] for a in fleet}
        arches = {r.architecture for r in rows}
        targets: dict[tuple[str, str], ReleaseRow | None] = {
            (group, arch): target_for(conn, group, arch) for group in groups for arch in arches}
        totals: dict[str, int] = dict(conn.execute(select(agent_upgrades.c.state, func.count())
                                   .group_by(agent_upgrades.c.state)).all())
    versions: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for row in rows:  # newest first
        key = (row.version, row.architecture)
        if key in seen:
            continue
        seen.add(key)
        targeted_groups = sorted(g for g in groups
                                 if (t := targets[(g, row.architecture)]) is not None
                                 and t.version == row.version)
        targeted = [a for a in fleet if a["group"] in targeted_groups
                    and arch_of.get(a["id"], row.architecture) == row.architecture]
        ids = {a["id"] for a in targeted}
        states = {p["agent_id"]: p["state"] for p in progress if p["version"] == row.version}
        installed = sum(1 for a in fleet if runs(row.version, a["agent_version"] or "")
                        and arch_of.get(a["id"], row.architecture) == row.architecture)
        installed_targeted = {a["id"] for a in targeted
                              if runs(row.version, a["agent_version"] or "")}
        failed = sum(1 for i, s in states.items() if s == "failed" and i in ids)
        refused = sum(1 for i, s in states.items() if s == "refused" and i in ids)
        downloaded = sum(1 for s in states.values() if s in ("downloaded", "installed", "failed"))
        versions.append({
            "version": row.version,
            "architecture": row.architecture,
            "sha256": row.sha256,
            "last_action": row.action,
            "last_change": row.created_at.isoformat(),
            "target_groups": targeted_groups,
            "targeted": len(targeted),
            "downloaded": downloaded,
            "installed": installed,
            "failed": failed,
            "refused": refused,
            "pending": max(0, len(ids - installed_targeted) - failed - refused),
        })
    return {
        "releases": [_row(r) for r in rows],
        "versions": versions,
        "states": totals,
    }


def _row(row: ReleaseRow) -> dict[str, Any]:
    return {"id": row.id, "version": row.version, "architecture": row.architecture,
            "group": row.group, "action": row.action, "source_id": row.source_id,
            "sha256": row.sha256, "author": row.author, "note": row.note,
            "created_at": row.created_at.isoformat()}
