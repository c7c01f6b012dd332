"""The ``documents`` policy kind: which checks run on judgment documents, and what follows.

A ``documents`` policy keeps the shared header (``kind``, ``schema_version``,
``lists``, ``rules``) and adds the default ``profile`` (the publication rules
in force: ``spc-2016`` or ``spc-2024``) and ``watch`` (the publication
folders the agent watches). Each rule's ``match`` names one ``check`` of the
checker, the ``action`` a hit calls for, its legal ``basis`` and the profiles
it belongs to. ``lists.keep`` holds names and words a court publishes as they
are.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Final, Literal

from pydantic import Field, StringConstraints

from agent.policy.models import PolicyDocument, Rule, StrictModel

#: The checks the checker implements (``checker.checks.CHECKS``); a rule names one.
DocumentCheck = Literal[
    "minor_defendant",
    "mediation",
    "family_cause",
    "family_related_cause",
    "state_secret",
    "non_public_hearing",
    "protected_person_name",
    "party_name",
    "company_trade_name",
    "hidden_name_leak",
    "pseudonym_collision",
    "resident_id",
    "legacy_id",
    "residence_permit",
    "travel_document",
    "mobile_phone",
    "landline_phone",
    "bank_account",
    "licence_plate",
    "property_certificate",
    "vehicle_identifier",
    "email",
    "messaging_account",
    "individual_business_code",
    "organisation_code",
    "address",
    "health",
    "technical_investigation",
    "private_matters",
    "trade_secret",
]
DocumentAction = Literal["block", "redact", "pseudonymize", "review"]
DocumentProfile = Literal["spc-2016", "spc-2024"]
DOCUMENT_PROFILES: Final = ("spc-2016", "spc-2024")


class DocumentMatch(StrictModel):
    """What one document rule checks, what follows from a hit, and on which legal ground.

    ``terms`` extend the check's built-in lexicon (wording that signals it);
    ``context`` words must appear within ``window`` characters before a
    candidate for context-gated checks (15-digit IDs, passports, accounts).
    """

    check: DocumentCheck
    action: DocumentAction
    basis: Annotated[str, StringConstraints(min_length=4, max_length=300)]
    profiles: list[DocumentProfile] = Field(min_length=1)
    terms: list[Annotated[str, StringConstraints(min_length=1, max_length=40)]] = Field(
        default_factory=list, max_length=200
    )
    context: list[Annotated[str, StringConstraints(min_length=1, max_length=20)]] = Field(
        default_factory=list, max_length=100
    )
    window: int = Field(default=16, ge=1, le=200)


class DocumentWatch(StrictModel):
    """Publication folders the agent watches, and when a file counts as settled."""

    folders: list[str] = Field(default_factory=list, max_length=64)
    extensions: list[Annotated[str, StringConstraints(pattern=r"^\.[a-z0-9]{1,8}$")]] = Field(
        default_factory=lambda: [".docx", ".pdf", ".txt", ".ofd", ".doc", ".wps"]
    )
    settle_s: float = Field(default=2.0, ge=0.1, le=600)
    max_file_bytes: int = Field(default=64 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024)


class DocumentsPolicy(PolicyDocument):
    """Rules for judgment documents published online (法释〔2016〕19号 and later practice)."""

    KIND: ClassVar[str] = "documents"
    profile: DocumentProfile = "spc-2024"
    watch: DocumentWatch = Field(default_factory=DocumentWatch)
    rules: list[Rule[DocumentMatch]]
