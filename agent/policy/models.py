"""The policy language: one header shared by every policy file, one model per kind.

Every file in ``policies/`` is a ``PolicyDocument``::

    kind: agent            # which model validates it (agent.registry.POLICY_KINDS)
    schema_version: 1
    lists: {name: [values]}  # data that rules refer to by name
    rules:
      - id: agent.silent     # stable dotted id, also the event's rule_id
        desc: what it detects and how to tune it
        severity: high
        tags: [stable, agent]  # the first tag is the rule's maturity
        match: {...}         # fixed vocabulary per kind, checked by pydantic
        exceptions: [...]    # shapes the rule declares, values operators add
        cases:               # worked examples, run by the tests and `policy check --cases`
          - {name: fires-on-x, expect: fires, now: ..., observations: [{...}]}
          - {name: quiet-on-y, expect: silent, now: ..., observations: [{...}]}

This module knows nothing of where policy comes from (a local directory today,
a signed bundle later): see ``agent.policy.loader``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Final, Generic, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    model_validator,
)

from agent.event_fields import RuleId, Severity

Maturity = Literal["stable", "incubating", "experimental", "deprecated"]
MATURITIES: Final = ("stable", "incubating", "experimental", "deprecated")

ListName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
Tag = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=64)]


class StrictModel(BaseModel):
    """Base of the policy models; validators are built at first use (``defer_build``), so a
    host builds only the policy kinds it reads."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class RuleException(StrictModel):
    """Values for which a rule stays silent; ``fields`` is the shape, ``values`` the rows."""

    name: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
    fields: list[Annotated[str, StringConstraints(max_length=64)]] = Field(min_length=1)
    values: list[list[Any]] = Field(default_factory=list)
    expires: date | None = None
    comment: str = ""

    @model_validator(mode="after")
    def _rows_fit_shape(self) -> RuleException:
        for row in self.values:
            if len(row) != len(self.fields):
                raise ValueError(
                    f"exception {self.name!r}: row {row!r} has {len(row)} values, "
                    f"the shape {self.fields!r} needs {len(self.fields)}"
                )
        return self


class RuleCase(StrictModel):
    """One worked example of a rule, kept beside it as data.

    ``observations`` are fed in order to the detector that reads the rule's
    section, each validated against that detector's ``observation_type``;
    ``now`` is the clock for every ``evaluate`` and ``finalize_at`` (default
    ``now``) the clock of the one ``finalize`` after them. ``expect`` says
    whether a finding carrying this rule's id must come out (``fires``) or
    must not (``silent``). Rules the collector evaluates (correlations across
    hosts) use the same shape, fed to the collector's evaluator instead.
    """

    name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=80)]
    expect: Literal["fires", "silent"]
    now: datetime
    finalize_at: datetime | None = None
    observations: list[Any] = Field(min_length=1, max_length=1000)
    comment: str = ""

    @model_validator(mode="after")
    def _aware_clock(self) -> RuleCase:
        for label, value in (("now", self.now), ("finalize_at", self.finalize_at)):
            if value is not None and value.utcoffset() is None:
                raise ValueError(
                    f"case {self.name}: {label} needs a UTC offset, e.g. 2026-03-02T09:00:00+08:00"
                )
        return self


def format_path(path: KeyPath) -> str:
    """``("rules", 0, "match", "x")`` as ``rules[0].match.x``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


class EmptyMatch(StrictModel):
    """For rules that fire on their event alone and need no match terms."""


MatchT = TypeVar("MatchT", bound=StrictModel)


class Rule(StrictModel, Generic[MatchT]):
    id: RuleId
    desc: Annotated[str, StringConstraints(min_length=10, max_length=2000)]
    severity: Severity
    tags: list[Tag] = Field(min_length=1)
    enabled: bool = True
    #: Who evaluates the rule: the agent's detectors, or the collector across hosts.
    scope: Literal["agent", "collector"] = "agent"
    match: MatchT
    exceptions: list[RuleException] = Field(default_factory=list)
    cases: list[RuleCase] = Field(default_factory=list)

    @model_validator(mode="after")
    def _maturity_first(self) -> Rule[MatchT]:
        if self.tags[0] not in MATURITIES:
            raise ValueError(
                f"rule {self.id}: the first tag must be its maturity, "
                f"one of {', '.join(MATURITIES)}"
            )
        return self


#: Where in a document a problem is: keys and list indexes, as pydantic writes ``loc``.
KeyPath = tuple[str | int, ...]

#: Validation context that leaves the cross-field checks (``lint``) to the caller, so
#: ``policy check`` can report each with its own line instead of one error at the top.
SKIP_LINT: Final = {"courtguard_skip_lint": True}


@dataclass(frozen=True)
class LintProblem:
    """A cross-field problem one document has: where it is, what is wrong, how to fix it."""

    path: KeyPath
    message: str
    fix: str


class PolicyHeader(StrictModel):
    """What every policy file has, before its kind is known."""

    model_config = ConfigDict(extra="allow", frozen=True)

    kind: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
    schema_version: int = Field(ge=1)


class PolicyDocument(StrictModel):
    """Base of every kind's model. Subclasses fix ``kind`` and the rule type."""

    KIND: ClassVar[str]
    SCHEMA_VERSION: ClassVar[int] = 1
    #: Whether agents read this kind. False: only the collector acts on it (like a rule's
    #: ``scope: collector``, for a whole document), so the bundle agents are served leaves
    #: it out and its data (people's contact details, say) never reaches a workstation.
    AGENT_READS: ClassVar[bool] = True

    kind: str
    schema_version: int
    lists: dict[ListName, list[Any]] = Field(default_factory=dict)
    rules: list[Any]

    @model_validator(mode="after")
    def _header(self, info: ValidationInfo) -> PolicyDocument:
        if self.kind != self.KIND:
            raise ValueError(f"kind is {self.kind!r}, this model reads {self.KIND!r}")
        if self.schema_version != self.SCHEMA_VERSION:
            raise ValueError(
                f"schema_version {self.schema_version} is not supported for kind {self.KIND!r}; "
                f"this agent reads version {self.SCHEMA_VERSION}"
            )
        if not (info.context or {}).get("courtguard_skip_lint"):
            problems = self.lint()
            if problems:
                raise ValueError(
                    "; ".join(f"{format_path(p.path)}: {p.message}" for p in problems)
                )
        return self

    def lint(self) -> list[LintProblem]:
        """Cross-field problems: what one field's type cannot see.

        A kind adds its own (unknown list references, overlapping ranges) by
        overriding this and extending ``super().lint()``. Validation refuses a
        document with any problem; ``policy check`` reports each at its line.
        """
        problems: list[LintProblem] = []
        first: dict[str, int] = {}
        for index, rule in enumerate(self.rules):
            if rule.id in first:
                problems.append(
                    LintProblem(
                        ("rules", index, "id"),
                        f"rule id {rule.id} appears twice (first at rules[{first[rule.id]}])",
                        "give each rule its own id, or delete the copy",
                    )
                )
            else:
                first[rule.id] = index
        return problems

    def unknown_list(self, path: KeyPath, name: str) -> LintProblem | None:
        """A problem when ``name`` is not one of this document's ``lists``; for kinds' lint()."""
        if name in self.lists:
            return None
        known = ", ".join(sorted(self.lists)) or "none defined"
        return LintProblem(
            path,
            f"refers to list {name!r}, which this file does not define (lists: {known})",
            f"add {name!r} under lists:, or correct the name",
        )

    def rule(self, rule_id: str) -> Any:
        """The enabled rule with this id, or None when it is absent or disabled."""
        for rule in self.rules:
            if rule.id == rule_id and rule.enabled:
                return rule
        return None


class AgentMatch(StrictModel):
    """Match terms for the agent's own rules; only ``agent.silent`` uses one."""

    missed_heartbeats: int | None = Field(default=None, ge=2, le=100)


class AgentPolicy(PolicyDocument):
    """Rules about the agents themselves: silence, dropped events, degraded detectors."""

    KIND: ClassVar[str] = "agent"
    rules: list[Rule[AgentMatch]]


#: Every policy kind this process understands, with the model that validates it. It starts
#: with the agent's own kind; ``agent.registry`` adds each detector's section
#: (``DetectorSpec.policy_model``) and the collector its own kinds
#: (``collector.routing.policy``), each through ``register_policy_kinds`` when imported.
#: Filled, not imported: detectors import this module, so it can import none of them.
POLICY_KINDS: Final[dict[str, type[PolicyDocument]]] = {
    AgentPolicy.KIND: AgentPolicy,
}


def register_policy_kinds(*models: type[PolicyDocument]) -> None:
    """Add kinds to ``POLICY_KINDS``; a kind already bound to another model is an error."""
    for model in models:
        if POLICY_KINDS.setdefault(model.KIND, model) is not model:
            raise ValueError(
                f"policy kind {model.KIND!r} is declared twice: "
                f"{POLICY_KINDS[model.KIND].__name__} and {model.__name__}"
            )

#: Kinds only the collector reads, whose models agents do not have. An agent meets one only in
#: a policy_dir copied whole from ``policies/``, or in a bundle stored before agents were served
#: their own: it leaves the document out, and names the file for deletion.
COLLECTOR_ONLY_KINDS: Final = frozenset({"alerting"})


def agent_never_reads(kind: str) -> bool:
    """Whether ``kind`` is collector-only: a known model that agents do not read, or one of
    ``COLLECTOR_ONLY_KINDS`` (whose model this process may not have)."""
    model = POLICY_KINDS.get(kind)
    return not model.AGENT_READS if model is not None else kind in COLLECTOR_ONLY_KINDS


def agent_documents(documents: Mapping[str, PolicyDocument]) -> dict[str, PolicyDocument]:
    """The documents of kinds agents read (``AGENT_READS``): what an agent's bundle holds."""
    return {kind: doc for kind, doc in documents.items() if type(doc).AGENT_READS}
