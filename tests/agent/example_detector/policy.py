"""The ``example`` policy kind: one rule with a threshold."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from agent.policy.models import PolicyDocument, Rule, StrictModel


class ExampleMatch(StrictModel):
    min_count: int = Field(ge=1)


class ExamplePolicy(PolicyDocument):
    KIND: ClassVar[str] = "example"
    rules: list[Rule[ExampleMatch]]
