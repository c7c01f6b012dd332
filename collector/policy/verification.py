"""Checking a stored bundle before the collector believes, re-signs or serves it.

The store is not where trust comes from: whoever can write the database (a
PostgreSQL shared by several collectors, a backup restored by hand, an SQL
console) could change a row, and a row names its own ``public_key``. The
collector's signing key file (``<data_dir>/policy-signing.key``, mode 0600)
is. So before a stored bundle is acted on (``CurrentPolicy``), re-signed
(promote, rollback) or served (``PolicyCache``), ``verify_stored`` checks, in
this order, and names the first failure:

1. each signed body, the full one and the agent one, against its own
   signature with the public half of the key file, over the exact stored
   bytes, before anything is parsed;
2. each body's SHA-256 against its digest column (the served ETag);
3. that the verified bytes say the row's version and group, and its action,
   source version, time, author and note (what ``policy status`` and the
   console show): a genuine body copied into another row (a replay under a
   newer version, a canary's bundle moved to every group) is refused, and so
   is a row whose author or note was rewritten;
4. the full body's documents against their kinds' models.

A signature's outcome is remembered per exact body, signature and key (a
bounded cache, bodies up to 1 MiB): ``policy status`` and the console's
policies page check every stored version each time, and an SM2 verification
costs tens of milliseconds (docs/gm.md). The cache compares the whole bytes,
so a changed byte is a miss and is verified afresh.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Final

from agent.errors import BundleRejected
from agent.policy.bundle import (
    PolicyBundle,
    parse_bundle,
    policy_set,
    sha256_hex,
    verify_signature,
)
from agent.policy.loader import PolicySet
from collector.errors import CollectorError
from collector.store.policies import StoredBundle

#: Bodies larger than this are verified every time rather than kept in the cache.
CACHED_BODY_BYTES: Final = 1024 * 1024


@functools.lru_cache(maxsize=256)
def _cached_signature_failure(body: bytes, signature: str, public_key: str) -> str | None:
    return _signature_failure(body, signature, public_key)


def _signature_failure(body: bytes, signature: str, public_key: str) -> str | None:
    """None when ``signature`` signs exactly ``body`` with the key; else the refusal's code."""
    try:
        verify_signature(body, signature, public_key)
    except BundleRejected as exc:
        return exc.code
    return None


def signature_failure(body: bytes, signature: str, public_key: str) -> str | None:
    """``_signature_failure``, remembered for bodies up to ``CACHED_BODY_BYTES``."""
    if len(body) > CACHED_BODY_BYTES:
        return _signature_failure(body, signature, public_key)
    return _cached_signature_failure(body, signature, public_key)


class BundleUntrusted(CollectorError):
    """A stored bundle failed a check of ``verify_stored``; ``code`` as in agent.policy_rejected."""

    def __init__(self, version: int, code: str, reason: str) -> None:
        super().__init__(f"策略版本 {version} 未通过验证：{reason}")
        self.version = version
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class _Body:
    label: str
    body: bytes
    signature: str
    sha256: str


def _bodies(stored: StoredBundle) -> list[_Body]:
    bodies = [_Body("完整策略包", stored.body, stored.signature, stored.sha256)]
    agent_parts = (stored.agent_body, stored.agent_signature, stored.agent_sha256)
    if any(part is not None for part in agent_parts):
        # All three or none (a row from before migration 0006); a partial set is an edit.
        bodies.append(_Body("代理策略包", stored.agent_body or b"", stored.agent_signature or "",
                            stored.agent_sha256 or ""))
    return bodies


def verify_stored(stored: StoredBundle, public_key: str) -> PolicySet:
    """The full bundle's policy once every check of the module docstring passes.

    Raises BundleUntrusted naming the body and the check that failed.
    """
    full = check_stored(stored, public_key)
    try:
        return policy_set(full)
    except BundleRejected as exc:
        raise BundleUntrusted(stored.version, exc.code, exc.reason) from None


def check_stored(stored: StoredBundle, public_key: str) -> PolicyBundle:
    """Steps 1 to 3 (signatures, digests, version and group): the parsed full bundle.

    What ``policy status`` checks of every version; it leaves out validating
    the documents, the costly step, which ``verify_stored`` adds.
    """
    version = stored.version
    full: PolicyBundle | None = None
    for part in _bodies(stored):
        failure = signature_failure(part.body, part.signature, public_key)
        if failure is not None:
            raise BundleUntrusted(
                version, failure,
                f"{part.label}的签名与本收集端签名密钥不符，数据库中的记录可能已被改动",
            )
        if sha256_hex(part.body) != part.sha256:
            raise BundleUntrusted(version, "malformed",
                                  f"{part.label}的 SHA-256 与数据库记录的摘要不符")
        try:
            bundle = parse_bundle(part.body)
        except BundleRejected as exc:
            raise BundleUntrusted(
                version, exc.code, f"{part.label}无法解析：{exc.reason}"
            ) from None
        if bundle.version != version or bundle.group != stored.group:
            raise BundleUntrusted(
                version, "not_applicable",
                f"{part.label}签名内容是版本 {bundle.version}（分组 {bundle.group or '全部'}），"
                f"而数据库记录为版本 {version}（分组 {stored.group or '全部'}）：记录被挪用",
            )
        signed = (bundle.action, bundle.source_version, bundle.created_at, bundle.author,
                  bundle.note)
        if signed != (stored.action, stored.source_version, stored.created_at, stored.author,
                      stored.note):
            raise BundleUntrusted(
                version, "not_applicable",
                f"{part.label}签名内容中的操作、来源版本、时间、发布人或说明与数据库记录不符",
            )
        if full is None:
            full = bundle
    assert full is not None  # noqa: S101 (_bodies always yields the full body first)
    return full
