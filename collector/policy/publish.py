"""Publish a policy bundle: number it, build both bodies, sign them, store them.

Each version is stored as two signed bodies with the same version, group and
metadata: the full bundle, which the collector acts on (``CurrentPolicy``,
promote, rollback), and the agent bundle, which holds only the kinds agents
read (``PolicyDocument.AGENT_READS``) and is what agents are served, so
collector-only data (the duty roster's contacts) never reaches a workstation.

In one transaction:

1. take the next version (``collector.store.policies.next_version``: the
   counter's row lock orders collector processes, so versions are unique and
   increasing, and a failed publish leaves no bundle behind);
2. build the full and agent bodies with that version in their metadata, and
   sign each with the collector's key (Ed25519, or SM2 with SM3: ``agent.signing``);
3. insert the row and, with an ``actor``, the ``policy.<action>`` audit entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from agent.policy.bundle import build_bundle_bytes, sha256_hex
from agent.policy.models import PolicyDocument, agent_documents
from agent.signing import Signer
from collector.errors import CollectorError
from collector.messages import _
from collector.policy.signing import register_public_key
from collector.store import audit
from collector.store.audit import Actor
from collector.store.database import Database
from collector.store.policies import StoredBundle, insert_bundle, next_version


def publish_bundle(
    db: Database,
    documents: Mapping[str, PolicyDocument],
    key: Signer,
    *,
    group: str | None,
    author: str,
    note: str,
    created_at: datetime,
    action: str = "publish",
    source_version: int | None = None,
    actor: Actor | None = None,
) -> StoredBundle:
    """Number, build, sign and store one bundle (full and agent bodies) in one transaction.

    With ``actor``, the audit log gets ``policy.<action>`` in the same transaction.
    """
    for_agents = agent_documents(documents)
    if not for_agents:
        raise CollectorError(
            _("the policy holds only kinds the collector reads ({kinds}) and none an agent "
              "reads, so agents could not use it; publish it with the agents' policy files "
              "(agent.yaml and the others)").format(kinds=_(", ").join(sorted(documents))))
    public = key.public_key.text
    register_public_key(db, public)
    with db.write() as conn:
        version = next_version(conn)
        meta: dict[str, Any] = {
            "version": version,
            "group": group,
            "created_at": created_at,
            "author": author,
            "note": note,
            "action": action,
            "source_version": source_version,
        }
        body = build_bundle_bytes(documents, **meta)
        agent_body = build_bundle_bytes(for_agents, with_cases=False, **meta)
        stored = StoredBundle(
            version=version,
            group=group,
            action=action,
            source_version=source_version,
            created_at=created_at,
            author=author,
            note=note,
            sha256=sha256_hex(body),
            body=body,
            signature=key.sign(body),
            public_key=public,
            agent_sha256=sha256_hex(agent_body),
            agent_body=agent_body,
            agent_signature=key.sign(agent_body),
        )
        insert_bundle(conn, stored)
        if actor is not None:
            audit.record(
                conn, actor, f"policy.{action}", "policy", str(version), created_at,
                from_value=None if source_version is None else str(source_version),
                to_value=group or "*", reason=note or None,
            )
    return stored
