"""What the documents source hands its detector: one document's extracted text parts."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from agent.detectors.documents.policy import DocumentProfile

PartName = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class DocumentPart(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    name: PartName
    text: str


class DocumentObservation(BaseModel):
    """A document, extracted (``parts``) or unreadable (``error``).

    Rule cases write the short form ``{text: ..., part?: ..., profile?: ...}``,
    which becomes one part. ``path`` is where the file lies; it never leaves
    the workstation unmasked (events carry a masked file name and hashes).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    path: str = "case.txt"
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] | None = None
    size: int = Field(default=0, ge=0)
    parts: list[DocumentPart] = Field(default_factory=list)
    text: str | None = None
    part: PartName = "body"
    profile: DocumentProfile | None = None
    error: Annotated[str, StringConstraints(max_length=500)] | None = None
    folder: str = ""

    @model_validator(mode="after")
    def _text_is_one_part(self) -> DocumentObservation:
        if self.text is not None:
            if self.parts:
                raise ValueError("give either text or parts, not both")
            object.__setattr__(self, "parts", [DocumentPart(name=self.part, text=self.text)])
        return self
