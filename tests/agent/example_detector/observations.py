"""What the example reader yields: a count it read."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class CountObserved(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["count"] = "count"
    count: int = Field(ge=0)
