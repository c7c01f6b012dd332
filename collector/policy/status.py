"""Which policy versions exist and which agents run them: for ``policy status`` and the API."""

from __future__ import annotations

from typing import Any

from collector.store.database import Database
from collector.store.policies import agents_by_policy_version, latest_for_group, list_bundles


def policy_status(db: Database) -> dict[str, Any]:
    """Versions newest first with agent counts, and per group the version it should run."""
    counts = agents_by_policy_version(db)
    per_version: dict[str, int] = {}
    groups: dict[str, dict[str, Any]] = {}
    for group, version, count in counts:
        key = version or "unknown"
        per_version[key] = per_version.get(key, 0) + count
        entry = groups.setdefault(group, {"group": group, "agents": 0, "by_version": {}})
        entry["agents"] += count
        entry["by_version"][key] = entry["by_version"].get(key, 0) + count
    for group, entry in groups.items():
        target = latest_for_group(db, group)
        entry["target_version"] = target.version if target else None
        entry["converged"] = target is not None and set(entry["by_version"]) == {
            str(target.version)
        }
    versions = [
        {
            "version": bundle.version,
            "group": bundle.group,
            "action": bundle.action,
            "source_version": bundle.source_version,
            "created_at": bundle.created_at.isoformat(),
            "author": bundle.author,
            "note": bundle.note,
            "sha256": bundle.sha256,
            "agents": per_version.get(str(bundle.version), 0),
        }
        for bundle in list_bundles(db)
    ]
    known = {str(v["version"]) for v in versions}
    other = {version: n for version, n in per_version.items() if version not in known}
    return {
        "versions": versions,
        "groups": sorted(groups.values(), key=lambda g: g["group"]),
        "agents_on_other_versions": other,
    }
