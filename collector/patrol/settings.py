"""The ``[patrol]`` table of collector.toml: where published documents are, how often, how fast."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from collector.messages import _


class PatrolSource(BaseModel):
    """One place published documents are read from: ``url`` or ``directory``, never both."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Names the source in alerts and in the store; keep it once chosen.
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    #: An HTTP(S) listing: an HTML index with links, or JSON (docs/documents.md, "Patrol").
    url: Annotated[str, StringConstraints(pattern=r"^https?://", max_length=2048)] | None = None
    #: The CA certificate (PEM) the mirror's certificate must chain to (https only).
    ca_file: Path | None = None
    #: A directory or mounted export, read recursively.
    directory: Path | None = None

    @model_validator(mode="after")
    def _one_place(self) -> PatrolSource:
        if (self.url is None) == (self.directory is None):
            raise ValueError(_("patrol source {name}: give exactly one of url and directory")
                             .format(name=self.name))
        if self.ca_file is not None and not (self.url or "").startswith("https://"):
            raise ValueError(_("patrol source {name}: ca_file is only for an https:// url")
                             .format(name=self.name))
        return self


class PatrolSettings(BaseModel):
    """Off until a source is listed and ``enabled`` is true (one collector process patrols)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    sources: list[PatrolSource] = Field(default_factory=list, max_length=32)
    #: Seconds between passes (the first starts one minute after start-up).
    interval_s: float = Field(default=3600.0, ge=1, le=7 * 86400)
    #: Pacing: at least this long between two requests to one source (listing pages included).
    request_interval_s: float = Field(default=0.5, ge=0, le=60)
    #: Seconds one request may take.
    timeout_s: float = Field(default=30.0, gt=0, le=600)
    #: Documents downloaded from one source in one pass (the rest wait for the next pass;
    #: unchanged ones do not count).
    max_documents: int = Field(default=20_000, ge=1, le=1_000_000)
    #: Largest listing page read, and how deep sub-listings (links ending in /) are followed.
    max_listing_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_listing_depth: int = Field(default=4, ge=0, le=16)

    @model_validator(mode="after")
    def _unique_names(self) -> PatrolSettings:
        names = [s.name for s in self.sources]
        if len(names) != len(set(names)):
            raise ValueError(_("patrol sources need different names"))
        return self
