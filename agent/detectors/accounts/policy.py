"""The ``accounts`` policy kind: contractor accounts, their roles, the calendar, and the rules.

A policy names outsourced accounts (by exact name, shell-style pattern or
group), binds each to a role and a responsible staff member (the contract
sponsor), and gives each role what it may do: hosts, hours, contract dates,
and what it must not touch. Role fields that take values also take
``"@list"`` entries, expanded from the document's ``lists``.
"""

from __future__ import annotations

import fnmatch
from datetime import date, time
from functools import cached_property
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import Field, StringConstraints, model_validator

from agent.calendar_cn import WorkCalendar
from agent.policy.calendar import CalendarSection
from agent.policy.models import (
    LintProblem,
    PolicyDocument,
    Rule,
    StrictModel,
)

Name = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class Hours(StrictModel):
    """A daily window in Asia/Shanghai; ``end`` before ``start`` spans midnight."""

    start: time
    end: time


class Contract(StrictModel):
    start: date | None = None
    end: date | None = None


class Role(StrictModel):
    """What one kind of contractor post may do."""

    description: str = ""
    hosts: list[Name] = Field(default_factory=lambda: ["*"])
    hours: Hours = Hours(start=time(8, 30), end=time(18, 0))
    #: Minutes before the start and after the end still counted as in hours.
    grace_minutes: int = Field(default=15, ge=0, le=240)
    #: False lets the role work on weekends and holidays (within ``hours``).
    workdays_only: bool = True
    #: Hours during key periods, if different (e.g. tighter).
    key_period_hours: Hours | None = None
    contract: Contract = Contract()
    forbidden_groups: list[Name] = Field(default_factory=list)
    forbidden_programs: list[Name] = Field(default_factory=list)
    protected_paths: list[Name] = Field(default_factory=list)
    #: Removable devices the role may mount, as ``vendor:product:serial`` (hex ids, ``*`` allowed).
    approved_devices: list[Name] = Field(default_factory=list)


class AccountEntry(StrictModel):
    """One way to recognise contractor accounts: exactly one of name, pattern, group."""

    name: Name | None = None
    pattern: Name | None = None
    group: Name | None = None
    role: Name
    sponsor: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    disabled: bool = False
    comment: str = ""

    @model_validator(mode="after")
    def _one_selector(self) -> AccountEntry:
        chosen = [k for k in ("name", "pattern", "group") if getattr(self, k) is not None]
        if len(chosen) != 1:
            raise ValueError("an account entry needs exactly one of name, pattern, group")
        return self

    def selects(self, account: str, groups: frozenset[str]) -> bool:
        if self.name is not None:
            return account == self.name
        if self.pattern is not None:
            return fnmatch.fnmatchcase(account, self.pattern)
        return self.group in groups


class AccountsMatch(StrictModel):
    """Match terms of accounts rules; each rule uses the ones its description names."""

    #: Burst rules: how many failures within ``window_s``.
    threshold: int | None = Field(default=None, ge=1, le=10_000)
    window_s: int | None = Field(default=None, ge=1, le=7 * 86_400)
    #: Privilege rules: which outcome of sudo/su/pkexec.
    outcome: Literal["success", "failure", "any"] = "any"
    #: Collector rules: overlap of live sessions, daily score threshold.
    min_overlap_s: int | None = Field(default=None, ge=1)
    score_threshold: int | None = Field(default=None, ge=1)
    #: Daily score: points per rule id.
    weights: dict[Name, int] = Field(default_factory=dict)


class Resolved(StrictModel):
    """A contractor account as the policy sees it."""

    account: str
    role_name: str
    role: Role
    sponsor: str
    disabled: bool


#: Role fields whose values may be ``@list`` references.
ROLE_LIST_FIELDS: Final = (
    "hosts",
    "forbidden_groups",
    "forbidden_programs",
    "protected_paths",
    "approved_devices",
)


class AccountsPolicy(PolicyDocument):
    """Contractor accounts bound to roles; see the module docstring."""

    KIND: ClassVar[str] = "accounts"
    rules: list[Rule[AccountsMatch]]
    calendar: CalendarSection = CalendarSection()
    roles: dict[Name, Role] = Field(default_factory=dict)
    accounts: list[AccountEntry] = Field(default_factory=list)

    def lint(self) -> list[LintProblem]:
        """Unknown roles, unknown ``@list`` references, a date both holiday and workday."""
        problems = super().lint()
        for index, entry in enumerate(self.accounts):
            if entry.role not in self.roles:
                known = ", ".join(sorted(self.roles)) or "none defined"
                problems.append(
                    LintProblem(
                        ("accounts", index, "role"),
                        f"account entry names unknown role {entry.role!r} (roles: {known})",
                        f"define role {entry.role!r} under roles:, or correct the name",
                    )
                )
        for role_name, role in self.roles.items():
            for attr in ROLE_LIST_FIELDS:
                for position, value in enumerate(getattr(role, attr)):
                    if value.startswith("@"):
                        problem = self.unknown_list(("roles", role_name, attr, position), value[1:])
                        if problem is not None:
                            problems.append(problem)
        problems.extend(self.calendar.lint(("calendar",)))
        return problems

    def expand(self, values: list[str]) -> list[str]:
        """Role values with ``@list`` entries replaced by the list's items."""
        out: list[str] = []
        for value in values:
            if value.startswith("@"):
                out.extend(str(item) for item in self.lists[value[1:]])
            else:
                out.append(value)
        return out

    @cached_property
    def work_calendar(self) -> WorkCalendar:
        return self.calendar.work_calendar()

    def resolve(self, account: str, groups: frozenset[str] = frozenset()) -> Resolved | None:
        """The first entry selecting ``account`` (names before patterns before groups)."""
        for selector in ("name", "pattern", "group"):
            for entry in self.accounts:
                if getattr(entry, selector) is not None and entry.selects(account, groups):
                    return Resolved(
                        account=account,
                        role_name=entry.role,
                        role=self.roles[entry.role],
                        sponsor=entry.sponsor,
                        disabled=entry.disabled,
                    )
        return None

    def selector_groups(self) -> frozenset[str]:
        """Groups whose members are contractors (so sources know whom to resolve)."""
        return frozenset(e.group for e in self.accounts if e.group is not None)

    def exception_applies(self, rule: Any, values: dict[str, Any], today: date) -> bool:
        """True when one of ``rule``'s unexpired exceptions matches ``values`` on every field."""
        for exception in rule.exceptions:
            if exception.expires is not None and exception.expires < today:
                continue
            if not all(field in values for field in exception.fields):
                continue
            for row in exception.values:
                if all(
                    fnmatch.fnmatchcase(str(values[field]), str(expected))
                    for field, expected in zip(exception.fields, row, strict=True)
                ):
                    return True
        return False
