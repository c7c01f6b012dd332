"""Agent releases in the store: publish, promote, roll back, the target of a group.

A package is stored once by its SHA-256 (``release_packages``) with the
signature over its exact bytes, made with the policy signing key
(``collector.policy.signing``: the key every agent pinned at enrollment).
Each publish, promote and rollback adds an ``agent_releases`` row pointing at a
package; a group's target for an architecture is the newest row of that
architecture naming the group or all groups (``group`` NULL), as for policy.

The signature covers only the bytes, never the targeting: promote and
rollback retarget the same signed package without signing again. A stored
package is verified with the key file's public half before it is retargeted
(``verified_package``), so an edited row is never laundered into a new target.

Refusals are CollectorError in the locale's language (``collector.messages``): the
command line prints them, and the agent-facing API passes ``verified_package``'s
as an English or Chinese detail no person relies on. The default notes of promote
and rollback stay Chinese: they go into the audit log the console shows.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, func, insert, select

from agent.signing import PublicKey, SignatureMismatch, Signer
from agent.upgrade.deb import DebError, read_control
from agent.upgrade.release import PACKAGE
from agent.upgrade.versions import compare, runs
from collector.errors import CollectorError, NotFoundError
from collector.messages import _
from collector.policy.signing import register_public_key
from collector.store import audit
from collector.store.audit import Actor
from collector.store.database import Database
from collector.store.tables import agent_releases, agent_upgrades, release_packages

ACTIONS: Final = ("publish", "promote", "rollback")
#: Longest version and architecture fields stored (the columns' widths).
MAX_VERSION_CHARS: Final = 64
MAX_ARCHITECTURE_CHARS: Final = 32
#: States an agent reports or the collector records, in the order a rollout passes them.
STATES: Final = ("downloaded", "installed", "failed", "refused")


@dataclass(frozen=True)
class ReleaseRow:
    id: int
    sha256: str
    version: str
    architecture: str
    group: str | None
    action: str
    source_id: int | None
    author: str
    note: str
    created_at: datetime

    @property
    def target(self) -> str:
        return self.group or "*"


@dataclass(frozen=True)
class Package:
    sha256: str
    package: str
    version: str
    architecture: str
    size: int
    body: bytes
    signature: str
    public_key: str


def _release(row: Any) -> ReleaseRow:
    m = row._mapping
    return ReleaseRow(m["id"], m["sha256"], m["version"], m["architecture"], m["group"],
                      m["action"], m["source_id"], m["author"], m["note"], m["created_at"])


def publish_release(
    db: Database, body: bytes, key: Signer, *, group: str | None, author: str, note: str,
    created_at: datetime, actor: Actor | None = None,
) -> ReleaseRow:
    """Read the package's control fields, sign its exact bytes, store it and target ``group``."""
    try:
        control = read_control(body)
    except DebError as exc:
        raise CollectorError(_("{reason}; publish an agent .deb package built by packaging/agent")
                             .format(reason=exc.localized())) from None
    if control.package != PACKAGE:
        raise CollectorError(
            _("the package is named {package}, not {agent}: the collector publishes only the "
              "agent's upgrade packages").format(package=control.package, agent=PACKAGE))
    if (len(control.version) > MAX_VERSION_CHARS
            or len(control.architecture) > MAX_ARCHITECTURE_CHARS):
        raise CollectorError(
            _("the package's Version or Architecture field is too long (at most {version} and "
              "{architecture} characters)").format(version=MAX_VERSION_CHARS,
                                                   architecture=MAX_ARCHITECTURE_CHARS))
    public = key.public_key.text
    register_public_key(db, public)
    digest = hashlib.sha256(body).hexdigest()
    signature = key.sign(body)
    with db.write() as conn:
        if conn.execute(select(release_packages.c.sha256)
                        .where(release_packages.c.sha256 == digest)).first() is None:
            conn.execute(insert(release_packages).values(
                sha256=digest, package=control.package, version=control.version,
                architecture=control.architecture, size=len(body), body=body,
                signature=signature, public_key=public))
        return _add_row(conn, digest, control.version, control.architecture, group, "publish",
                        None, author, note, created_at, actor)


def _add_row(
    conn: Connection, sha256: str, version: str, architecture: str, group: str | None,
    action: str, source_id: int | None, author: str, note: str, created_at: datetime,
    actor: Actor | None,
) -> ReleaseRow:
    values = {"sha256": sha256, "version": version, "architecture": architecture,
              "group": group, "action": action, "source_id": source_id, "author": author,
              "note": note[:500], "created_at": created_at}
    new_id = int(conn.execute(insert(agent_releases).values(**values)
                              .returning(agent_releases.c.id)).scalar_one())
    if actor is not None:
        audit.record(conn, actor, f"release.{action}", "release", str(new_id), created_at,
                     from_value=None if source_id is None else str(source_id),
                     to_value=f"{version} {architecture} {group or '*'}", reason=note or None)
    return ReleaseRow(new_id, sha256, version, architecture, group, action, source_id, author,
                      note[:500], created_at)


def list_releases(db: Database) -> list[ReleaseRow]:
    """Every release row, newest first."""
    with db.read() as conn:
        rows = conn.execute(select(agent_releases).order_by(agent_releases.c.id.desc()))
        return [_release(row) for row in rows]


def target_for(conn: Connection, group: str, architecture: str) -> ReleaseRow | None:
    """The newest release row of ``architecture`` for ``group`` or for all groups."""
    c = agent_releases.c
    row = conn.execute(
        select(agent_releases)
        .where(c.architecture == architecture, (c.group == group) | c.group.is_(None))
        .order_by(c.id.desc()).limit(1)).first()
    return None if row is None else _release(row)


def published_for(conn: Connection, architecture: str, running: str) -> ReleaseRow | None:
    """The newest release of ``architecture`` whose version an agent reporting ``running`` runs."""
    c = agent_releases.c
    for row in conn.execute(select(agent_releases).where(c.architecture == architecture)
                            .order_by(c.id.desc())):
        if runs(row.version, running):
            return _release(row)
    return None


def newest_id_for_group(conn: Connection, group: str) -> int | None:
    """The newest release row naming ``group`` or all groups, any architecture: the hint."""
    c = agent_releases.c
    return conn.execute(select(func.max(c.id))
                        .where((c.group == group) | c.group.is_(None))).scalar()


def hint_map(db: Database) -> tuple[int | None, dict[str | None, int]]:
    """The newest row id overall, and per group (None: all groups) its newest row id."""
    c = agent_releases.c
    with db.read() as conn:
        top = conn.execute(select(func.max(c.id))).scalar()
        per = {group: int(newest) for group, newest in
               conn.execute(select(c.group, func.max(c.id)).group_by(c.group))}
    return top, per


def get_package(conn: Connection, sha256: str) -> Package | None:
    row = conn.execute(select(release_packages)
                       .where(release_packages.c.sha256 == sha256)).first()
    if row is None:
        return None
    m = row._mapping
    return Package(m["sha256"], m["package"], m["version"], m["architecture"], int(m["size"]),
                   bytes(m["body"]), m["signature"], m["public_key"])


def verified_package(conn: Connection, sha256: str, public_key: str) -> Package:
    """The stored package, when its bytes still verify with ``public_key`` and match the digest.

    CollectorError (with the cause) otherwise: a package that fails is never
    served or retargeted.
    """
    package = get_package(conn, sha256)
    if package is None:
        raise CollectorError(_("package {sha256}… is no longer in the database")
                             .format(sha256=sha256[:16]))
    if hashlib.sha256(package.body).hexdigest() != sha256:
        raise CollectorError(_("package {sha256}… does not match its digest: the database "
                               "record was altered").format(sha256=sha256[:16]))
    try:
        PublicKey.parse(public_key).verify(package.body, package.signature)
    except SignatureMismatch as exc:
        raise CollectorError(
            _("the signature of package {sha256}… does not verify with this collector's "
              "signing key ({reason})").format(sha256=sha256[:16], reason=exc.reason)) from None
    return package


def promote(
    db: Database, version: str, public_key: str, *, author: str, note: str,
    created_at: datetime, actor: Actor | None = None,
) -> list[ReleaseRow]:
    """Target every group with ``version`` (each architecture it was published for)."""
    made: list[ReleaseRow] = []
    with db.write() as conn:
        c = agent_releases.c
        sources = conn.execute(select(agent_releases).where(c.version == version)
                               .order_by(c.id.desc())).all()
        if not sources:
            raise NotFoundError(_("version {version} was never published; `courtguard-collector "
                                  "release list` shows the published versions")
                                .format(version=version))
        seen: set[str] = set()
        for source in map(_release, sources):
            if source.architecture in seen:
                continue
            seen.add(source.architecture)
            current = target_for_all(conn, source.architecture)
            if current is not None and current.sha256 == source.sha256:
                continue
            verified_package(conn, source.sha256, public_key)
            made.append(_add_row(conn, source.sha256, source.version, source.architecture, None,
                                 "promote", source.id, author,
                                 note or f"推广版本 {version} 至全部分组", created_at, actor))
        if not made:
            raise CollectorError(_("version {version} already targets all groups; nothing to "
                                   "promote").format(version=version))
    return made


def target_for_all(conn: Connection, architecture: str) -> ReleaseRow | None:
    """The newest row of ``architecture`` that targets all groups."""
    c = agent_releases.c
    row = conn.execute(select(agent_releases)
                       .where(c.architecture == architecture, c.group.is_(None))
                       .order_by(c.id.desc()).limit(1)).first()
    return None if row is None else _release(row)


def rollback(
    db: Database, public_key: str, *, group: str | None, architecture: str | None,
    author: str, note: str, created_at: datetime, actor: Actor | None = None,
) -> list[ReleaseRow]:
    """Target ``group`` (None: all groups) with the release before its current one.

    Per architecture: the current target is the newest row for the group; the
    previous release is the highest version below it ever targeted at the
    group (or all groups), so rolling back twice goes down twice and never
    back up to a broken version. Agents never install an older version than
    they run, so a rollback stops a rollout where it stands: agents already
    upgraded stay on their version, the others stay on or go to the previous one.
    """
    made: list[ReleaseRow] = []
    c = agent_releases.c
    with db.write() as conn:
        arches = [architecture] if architecture else list(
            conn.execute(select(c.architecture).distinct()).scalars())
        for arch in sorted(arches):
            rows = [_release(r) for r in conn.execute(
                select(agent_releases).where(
                    c.architecture == arch,
                    c.group.is_(None) if group is None else ((c.group == group)
                                                             | c.group.is_(None)))
                .order_by(c.id.desc()))]
            if not rows:
                continue
            current = rows[0]
            previous = None
            for row in rows[1:]:  # newest first: the first of a version is its newest row
                if compare(row.version, current.version) < 0 and (
                        previous is None or compare(row.version, previous.version) > 0):
                    previous = row
            if previous is None:
                continue
            verified_package(conn, previous.sha256, public_key)
            made.append(_add_row(conn, previous.sha256, previous.version, arch, group, "rollback",
                                 previous.id, author,
                                 note or f"从版本 {current.version} 回滚至 {previous.version}",
                                 created_at, actor))
    if not made and group:
        raise CollectorError(_("group {group} has no previous release to roll back to (one "
                               "version was published, or none)").format(group=group))
    if not made:
        raise CollectorError(_("there is no previous release to roll back to for all groups "
                               "(one version was published, or none)"))
    return made


def record_progress(
    db: Database, agent_id: str, version: str, state: str, at: datetime, *,
    architecture: str = "", reason_code: str | None = None, reason: str | None = None,
) -> None:
    """Upsert what ``agent_id`` did with ``version``; ``downloaded`` never hides a later state."""
    with db.write() as conn:
        c = agent_upgrades.c
        found = conn.execute(select(c.state).where(c.agent_id == agent_id,
                                                   c.version == version)).first()
        values = {"state": state, "reason_code": reason_code, "reason": reason,
                  "updated_at": at, "architecture": architecture}
        if found is None:
            conn.execute(insert(agent_upgrades).values(agent_id=agent_id, version=version,
                                                       **values))
        elif state != "downloaded" or found.state == "downloaded":
            conn.execute(agent_upgrades.update()
                         .where(c.agent_id == agent_id, c.version == version).values(**values))


def failed_upgrades(db: Database) -> dict[str, dict[str, Any]]:
    """Per agent its newest failed upgrade (version, reason, when), for the agents listing."""
    c = agent_upgrades.c
    found: dict[str, dict[str, Any]] = {}
    with db.read() as conn:
        for row in conn.execute(select(agent_upgrades).where(c.state == "failed")
                                .order_by(c.updated_at)):
            found[row.agent_id] = {"version": row.version, "reason_code": row.reason_code,
                                   "reason": row.reason, "at": row.updated_at.isoformat()}
    return found
