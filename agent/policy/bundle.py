"""The signed policy bundle: one canonical byte string, its signature, and its checks.

The collector builds a bundle from a checked policy directory and signs the
exact bytes; the agent, in this order:

1. verifies the signature over the bytes it received against the key it
   pinned at enrollment, with that key's algorithm (Ed25519, or SM2 with SM3:
   ``agent.signing``), before parsing anything;
2. parses the bytes as a ``PolicyBundle`` (format, version, group, metadata);
3. refuses a version older than the one it runs (a replayed bundle) and a
   bundle aimed at another group;
4. validates every document against its kind's model (``POLICY_KINDS``,
   including each kind's ``lint``) into a ``PolicySet``.

Canonical bytes: JSON with sorted keys, no spaces, UTF-8, so the same content
gives the same bytes on every machine. This module knows nothing of HTTP.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from agent.errors import BundleRejected
from agent.policy.loader import PolicySet
from agent.policy.models import COLLECTOR_ONLY_KINDS, PolicyDocument
from agent.registry import POLICY_KINDS

BUNDLE_FORMAT: Final = "courtguard-policy-bundle/1"
#: A bundle larger than this is refused before its signature is even checked.
MAX_BUNDLE_BYTES: Final = 16 * 1024 * 1024

GroupName = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)
]


class PolicyBundle(BaseModel):
    """What the signed bytes say: which version, for whom, by whom, and the documents."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    format: Literal["courtguard-policy-bundle/1"]
    version: int = Field(ge=1)
    #: None: every group.
    group: GroupName | None = None
    action: Literal["publish", "promote", "rollback"] = "publish"
    source_version: int | None = None
    created_at: AwareDatetime
    author: Annotated[str, StringConstraints(max_length=100)]
    note: Annotated[str, StringConstraints(max_length=500)] = ""
    documents: dict[str, dict[str, Any]] = Field(min_length=1)


def canonical_bytes(value: Mapping[str, Any]) -> bytes:
    return json.dumps(
        value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    ).encode()


def without_cases(document: Mapping[str, Any]) -> dict[str, Any]:
    """A policy document's data with each rule's worked examples (``cases``) left out.

    Cases are for ``policy check --cases`` and the tests; an agent never runs
    them (a rule's ``cases`` default to none), so the bundle agents are served
    is built without them and stays the size of the rules themselves.
    """
    rules = document.get("rules")
    if not isinstance(rules, list):
        return dict(document)
    return {
        **document,
        "rules": [
            {key: value for key, value in rule.items() if key != "cases"}
            if isinstance(rule, Mapping) else rule
            for rule in rules
        ],
    }


def build_bundle_bytes(
    documents: Mapping[str, PolicyDocument],
    *,
    version: int,
    group: str | None,
    created_at: datetime,
    author: str,
    note: str = "",
    action: str = "publish",
    source_version: int | None = None,
    with_cases: bool = True,
) -> bytes:
    """The canonical bytes of a bundle holding ``documents`` (validated, as JSON data).

    ``with_cases=False`` leaves the rules' ``cases`` out (``without_cases``): the agent body.
    """
    data = {kind: doc.model_dump(mode="json") for kind, doc in sorted(documents.items())}
    if not with_cases:
        data = {kind: without_cases(document) for kind, document in data.items()}
    bundle = PolicyBundle.model_validate(
        {
            "format": BUNDLE_FORMAT,
            "version": version,
            "group": group,
            "action": action,
            "source_version": source_version,
            "created_at": created_at,
            "author": author,
            "note": note,
            "documents": data,
        }
    )
    return canonical_bytes(bundle.model_dump(mode="json"))


def sha256_hex(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def verify_signature(
    body: bytes, signature_b64: str, public_key: str, *, claimed_algorithm: str | None = None
) -> None:
    """Raise BundleRejected(bad_signature) unless ``signature`` signs ``body`` with the key.

    ``public_key`` is the pinned policy-key text, which names its algorithm
    (``agent.signing.PublicKey``); only that algorithm is ever tried.
    ``claimed_algorithm`` is what the sender says it signed with: when it names
    another algorithm the bundle is refused with that said, never verified another way.
    """
    from agent.signing import PublicKey, SignatureMismatch

    if len(body) > MAX_BUNDLE_BYTES:
        raise BundleRejected("malformed", f"the bundle is larger than {MAX_BUNDLE_BYTES} bytes")
    try:
        key = PublicKey.parse(public_key)
    except SignatureMismatch as exc:
        raise BundleRejected("bad_signature", exc.reason) from None
    if claimed_algorithm is not None and claimed_algorithm != key.algorithm:
        raise BundleRejected(
            "bad_signature",
            f"the bundle is signed with {claimed_algorithm[:20]!r}, but the policy key pinned at "
            f"enrollment is {key.algorithm}: a bundle signed another way is never applied",
        )
    try:
        key.verify(body, signature_b64)
    except SignatureMismatch as exc:
        raise BundleRejected(
            "bad_signature", f"{exc.reason} (the policy key pinned at enrollment)"
        ) from None


def parse_bundle(body: bytes) -> PolicyBundle:
    """The bundle the (already verified) bytes hold; BundleRejected(malformed) otherwise."""
    try:
        return PolicyBundle.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise BundleRejected(
            "malformed", f"the bundle is not a {BUNDLE_FORMAT} bundle: {where}: {first['msg']}"
        ) from None


def check_applicable(bundle: PolicyBundle, *, group: str, applied_version: int | None) -> None:
    """Refuse a bundle for another group, or older than the one applied (a replay)."""
    if bundle.group is not None and bundle.group != group:
        raise BundleRejected(
            "other_group",
            f"bundle version {bundle.version} is for group {bundle.group!r}; "
            f"this agent is in group {group!r}",
        )
    if applied_version is not None and bundle.version < applied_version:
        raise BundleRejected(
            "older_version",
            f"bundle version {bundle.version} is older than the applied version "
            f"{applied_version}; a replayed bundle is never applied",
        )


def policy_set(bundle: PolicyBundle, required: frozenset[str] = frozenset()) -> PolicySet:
    """Validate every document of the bundle; BundleRejected(invalid_policy) on any problem."""
    documents: dict[str, PolicyDocument] = {}
    for kind, data in bundle.documents.items():
        model = POLICY_KINDS.get(kind)
        if model is None and kind in COLLECTOR_ONLY_KINDS:
            continue  # a full bundle stored before agents got their own: nothing here reads it
        if model is None:
            raise BundleRejected(
                "invalid_policy",
                f"the bundle holds kind {kind!r}, which this agent does not know; "
                "upgrade the agent or publish without it",
            )
        try:
            documents[kind] = model.model_validate(data)
        except ValidationError as exc:
            first = exc.errors(include_url=False, include_input=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "(top level)"
            raise BundleRejected(
                "invalid_policy",
                f"{kind}: {where}: {first['msg']} ({exc.error_count()} problem(s))",
            ) from None
    missing = sorted(required - set(documents))
    if missing:
        raise BundleRejected(
            "invalid_policy",
            f"the bundle lacks the section(s) {', '.join(missing)} that enabled detectors read",
        )
    return PolicySet(documents=documents, version=str(bundle.version))


def open_bundle(
    body: bytes,
    signature_b64: str,
    public_key: str,
    *,
    group: str,
    applied_version: int | None,
    required: frozenset[str] = frozenset(),
    claimed_algorithm: str | None = None,
) -> tuple[PolicyBundle, PolicySet]:
    """Steps 1 to 4 of the module docstring; BundleRejected with a reason code on any failure."""
    verify_signature(body, signature_b64, public_key, claimed_algorithm=claimed_algorithm)
    bundle = parse_bundle(body)
    check_applicable(bundle, group=group, applied_version=applied_version)
    return bundle, policy_set(bundle, required)
