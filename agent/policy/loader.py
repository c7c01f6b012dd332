"""Read policy documents from a directory and validate each against its kind's model.

Where policy comes from is not what it means: this module only reads files and
dispatches them to ``agent.registry.POLICY_KINDS``; a signed-bundle client will hand the same
``PolicySet`` to the daemon.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import ValidationError

from agent.errors import PolicyError
from agent.policy.models import PolicyDocument, PolicyHeader, agent_never_reads
from agent.registry import POLICY_KINDS

#: A policy file larger than this is refused before it is parsed.
MAX_POLICY_FILE_BYTES: Final = 4 * 1024 * 1024


@dataclass(frozen=True)
class PolicySet:
    """Validated documents by kind, and a version that changes whenever any of them does."""

    documents: Mapping[str, PolicyDocument] = field(default_factory=dict)
    version: str = "none"
    #: Kinds of the files read that agents never read (``agent_never_reads``); one this
    #: process has no model for is not among ``documents``.
    collector_only: tuple[str, ...] = ()

    def section(self, kind: str) -> PolicyDocument | None:
        return self.documents.get(kind)


def _format_errors(path: Path, error: ValidationError) -> str:
    lines = []
    for item in error.errors(include_url=False):
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        lines.append(f"  {path.name}: {where}: {item['msg']}")
    return "\n".join(lines)


def _read_header(path: Path, raw: bytes) -> tuple[PolicyHeader, dict[str, Any]]:
    """Parse one file's bytes as far as its header; raise PolicyError naming the file."""
    if len(raw) > MAX_POLICY_FILE_BYTES:
        raise PolicyError(f"{path}: larger than {MAX_POLICY_FILE_BYTES} bytes; split it")
    try:
        data: Any = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise PolicyError(f"{path}: expected a mapping with kind, schema_version, lists, rules")
    try:
        header = PolicyHeader.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(f"{path}: bad policy header:\n{_format_errors(path, exc)}") from exc
    return header, data


def _validate(path: Path, header: PolicyHeader, data: dict[str, Any]) -> PolicyDocument:
    model = POLICY_KINDS.get(header.kind)
    if model is None:
        known = ", ".join(sorted(POLICY_KINDS))
        raise PolicyError(f"{path}: unknown policy kind {header.kind!r}; known kinds: {known}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(
            f"{path}: invalid {header.kind} policy:\n{_format_errors(path, exc)}"
        ) from exc


def parse_document(path: Path, raw: bytes) -> PolicyDocument:
    """Validate one file's bytes; raise PolicyError naming the file and every problem."""
    return _validate(path, *_read_header(path, raw))


def policy_version(documents: Iterable[PolicyDocument]) -> str:
    """A content hash: local policy has no publisher to number it."""
    canonical = json.dumps(
        sorted((doc.model_dump(mode="json") for doc in documents), key=lambda d: d["kind"]),
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return "local-" + hashlib.sha256(canonical.encode()).hexdigest()[:12]


def load_policy_dir(directory: Path, required: Iterable[str] = ()) -> PolicySet:
    """Load every ``*.yaml`` under ``directory``; every kind in ``required`` must be present."""
    if not directory.is_dir():
        raise PolicyError(
            f"policy directory {directory} does not exist; copy the project's policies/ there "
            "or set policy_dir in agent.toml"
        )
    documents: dict[str, PolicyDocument] = {}
    collector_only: list[str] = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise PolicyError(f"{path}: cannot be read: {exc.strerror}") from exc
        header, data = _read_header(path, raw)
        if agent_never_reads(header.kind):
            collector_only.append(header.kind)
            if header.kind not in POLICY_KINDS:
                continue  # an agent without the collector's models: nothing here reads it
        document = _validate(path, header, data)
        if document.kind in documents:
            raise PolicyError(f"{path}: a second file of kind {document.kind!r}; keep one per kind")
        documents[document.kind] = document
    missing = sorted(set(required) - set(documents))
    if missing:
        raise PolicyError(
            f"policy directory {directory} lacks the section(s) {', '.join(missing)} "
            "that enabled detectors read"
        )
    return PolicySet(documents=documents, version=policy_version(documents.values()),
                     collector_only=tuple(sorted(set(collector_only))))
