"""Which policy versions exist and which agents run them: for ``policy status`` and the API.

With the key file's public half, every version's stored bytes are checked
(``check_stored``: signatures, digests, version and group), so an edited row
shows as failed (``verified: false`` and the reason) and no group is said to
run it: a group's target is its newest version that passed, the one it is
served. Without a key (``verified: null``) the rows are shown as stored.
"""

from __future__ import annotations

from typing import Any

from collector.errors import NotFoundError
from collector.policy.signing import signature_algorithm
from collector.policy.verification import BundleUntrusted, check_stored
from collector.store.database import Database
from collector.store.policies import agents_by_policy_version, get_bundle, list_bundles


def _verification(db: Database, version: int, public_key: str | None) -> tuple[bool | None, str]:
    if public_key is None:
        return None, ""
    try:
        check_stored(get_bundle(db, version), public_key)
    except BundleUntrusted as exc:
        return False, exc.reason
    except NotFoundError:  # deleted since it was listed
        return False, "记录已被删除"
    return True, ""


def _target(versions: list[dict[str, Any]], group: str) -> int | None:
    for entry in versions:  # newest first
        if entry["group"] in (None, group) and entry["verified"] is not False:
            return int(entry["version"])
    return None


def policy_status(db: Database, public_key: str | None = None) -> dict[str, Any]:
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
            "verified": verified,
            "verification_failure": failure,
        }
        for bundle in list_bundles(db)
        for verified, failure in (_verification(db, bundle.version, public_key),)
    ]
    for group, entry in groups.items():
        target = _target(versions, group)
        entry["target_version"] = target
        entry["converged"] = target is not None and set(entry["by_version"]) == {str(target)}
    known = {str(v["version"]) for v in versions}
    other = {version: n for version, n in per_version.items() if version not in known}
    return {
        #: The key file's algorithm, what every version must verify with; None without a key.
        "signature_algorithm": None if public_key is None else signature_algorithm(public_key),
        "versions": versions,
        "groups": sorted(groups.values(), key=lambda g: g["group"]),
        "agents_on_other_versions": other,
    }
