"""Typed evidence of every ``document.*`` event kind (``DetectorSpec.evidence_models``).

Evidence names a document by its masked file name, folder and hashes, and a
finding by its part, offsets and a masked excerpt: never raw personal data.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Final

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from agent.events import Evidence


class DocumentOccurrence(BaseModel):
    """Where one finding lies: a part, offsets into its extracted text, a masked excerpt."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    part: Annotated[str, StringConstraints(max_length=200)]
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    excerpt: Annotated[str, StringConstraints(max_length=200)]
    detail: Annotated[str, StringConstraints(max_length=200)] = ""


class DocumentFindingEvidence(Evidence):
    """One rule's findings in one document: masked excerpts and hashes, never raw personal data."""

    FINGERPRINT_FIELDS: ClassVar[tuple[str, ...]] = ("sha256",)

    file_name: Annotated[str, StringConstraints(max_length=500)]
    folder: Annotated[str, StringConstraints(max_length=1000)] = ""
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    size: int = Field(ge=0)
    verdict: Annotated[
        str,
        StringConstraints(pattern=r"^(publishable|needs_redaction|do_not_publish|needs_review)$"),
    ]
    profile: Annotated[str, StringConstraints(max_length=32)]
    action: Annotated[str, StringConstraints(pattern=r"^(block|redact|pseudonymize|review)$")]
    basis: Annotated[str, StringConstraints(max_length=300)]
    occurrences: list[DocumentOccurrence] = Field(max_length=50)
    occurrences_total: int = Field(ge=0)


class DocumentUnreadableEvidence(Evidence):
    """A document in a publication folder that could not be checked (corrupt, encrypted...)."""

    FINGERPRINT_FIELDS: ClassVar[tuple[str, ...]] = ("folder", "file_name")

    file_name: Annotated[str, StringConstraints(max_length=500)]
    folder: Annotated[str, StringConstraints(max_length=1000)] = ""
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] | None = None
    size: int = Field(ge=0)
    error: Annotated[str, StringConstraints(max_length=500)]


DOCUMENT_EVIDENCE_MODELS: Final[dict[str, type[Evidence]]] = {
    "document.block": DocumentFindingEvidence,
    "document.redact": DocumentFindingEvidence,
    "document.pseudonymize": DocumentFindingEvidence,
    "document.review": DocumentFindingEvidence,
    "document.unreadable": DocumentUnreadableEvidence,
}
