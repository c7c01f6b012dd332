"""The ``alerting`` policy kind: who is on duty, where alerts go, when nobody answers.

Read by the collector's router (``collector/routing``), never by a detector,
so it is collector-only (``AGENT_READS = False``): the bundle agents receive
leaves it out, and the people's numbers and addresses stay on the collector.
The file has no ``rules`` of its own (it decides where other rules' alerts go),
so its worked examples are the router's tests. Sections:

- ``calendar``: the shared per-year overrides and key periods (重点时期);
- ``windows``: named calendars (day kinds, hours, inside/outside key periods)
  that routes and escalation steps are active in or outside of;
- ``people`` and ``duty``: the roster (shifts, rotations, leave, overrides);
  the duty office's CSV adds overrides at run time (``duty import``);
- ``receivers``: an ordered list of channels (the next is the fallback) that
  channel settings in collector.toml (``notify_channels``) define;
- ``routes``, ``inhibitions``, ``escalations``: see docs/alerting.md.

Secrets (robot tokens, SMTP passwords) are not policy: they live in the
collector's settings, so the file can be published like any other.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, time
from typing import Annotated, ClassVar, Final, Literal

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from agent.calendar_cn import DayKind
from agent.events import Severity
from agent.policy.calendar import CalendarSection
from agent.policy.models import (
    KeyPath,
    LintProblem,
    PolicyDocument,
    StrictModel,
    register_policy_kinds,
)

Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]*$", max_length=64)]
Label = Literal[
    "kind", "severity", "rule_id", "host", "host_group", "account", "account_class",
    "fingerprint", "key_period",
]
Position = Literal["on_duty", "backup", "leader"]
POSITIONS: Final = ("on_duty", "backup", "leader")
#: How the duty office's sheets name the positions and shifts.
POSITION_NAMES: Final = {"on_duty": "值班员", "backup": "备班", "leader": "值班领导"}
Seconds = Annotated[int, Field(ge=0, le=7 * 86_400)]


class Window(StrictModel):
    """A named calendar: which day kinds, which hours (Asia/Shanghai), key period or not.

    Every given term must hold. ``end`` before ``start`` spans midnight and
    counts the early hours as part of the day the window started.
    """

    days: list[DayKind] = Field(default_factory=list)
    start: time | None = None
    end: time | None = None
    key_period: bool | None = None

    @model_validator(mode="after")
    def _both_ends(self) -> Window:
        if (self.start is None) != (self.end is None):
            raise ValueError("a window gives both start and end, or neither")
        return self


class Person(StrictModel):
    name: Annotated[str, StringConstraints(min_length=1, max_length=50)]
    mobile: Annotated[str, StringConstraints(pattern=r"^\+?[0-9]{5,20}$")] | None = None
    email: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+$")] | None = None
    dingtalk_user_id: Annotated[str, StringConstraints(max_length=64)] | None = None
    wecom_user_id: Annotated[str, StringConstraints(max_length=64)] | None = None


class Shift(StrictModel):
    """A daily shift; ``end`` at or before ``start`` ends the next day (a night shift)."""

    label: Annotated[str, StringConstraints(min_length=1, max_length=20)]
    start: time
    end: time


class Rotation(StrictModel):
    """Members take turns at one position of some shifts, ``length_days`` each, from ``start``."""

    name: Name
    position: Position
    shifts: list[Name] = Field(min_length=1)
    members: list[Name] = Field(min_length=1)
    start: date
    length_days: int = Field(default=7, ge=1, le=366)
    #: Only on these day kinds (empty: every day), e.g. nights and holidays only.
    days: list[DayKind] = Field(default_factory=list)


class DutyOverride(StrictModel):
    """One shift's position given to someone else (a swap), written into the policy."""

    date: date
    shift: Name
    position: Position
    person: Name
    comment: str = ""


class Leave(StrictModel):
    """A person away: rotations skip them (the next member stands in)."""

    person: Name
    start: date
    end: date
    comment: str = ""


class DutySection(StrictModel):
    shifts: dict[Name, Shift] = Field(default_factory=dict)
    rotations: list[Rotation] = Field(default_factory=list)
    overrides: list[DutyOverride] = Field(default_factory=list)
    leave: list[Leave] = Field(default_factory=list)


class ChannelUse(StrictModel):
    """One channel of a receiver; ``to`` fixes extra addressees (e-mail, SMS) beside the duty."""

    channel: Name
    to: list[Annotated[str, StringConstraints(min_length=1, max_length=200)]] = Field(
        default_factory=list
    )


class Receiver(StrictModel):
    """Channels tried in order: the next one is used when one fails after its retries."""

    channels: list[ChannelUse] = Field(min_length=1, max_length=8)


class Matchers(StrictModel):
    """What an alert must have; every given term must hold (values are alternatives)."""

    kinds: list[Annotated[str, StringConstraints(max_length=64)]] = Field(default_factory=list)
    rules: list[Annotated[str, StringConstraints(max_length=128)]] = Field(default_factory=list)
    min_severity: Severity | None = None
    host_groups: list[Annotated[str, StringConstraints(max_length=64)]] = Field(
        default_factory=list
    )
    account_classes: list[Annotated[str, StringConstraints(max_length=64)]] = Field(
        default_factory=list
    )
    key_period: bool | None = None


def _default_group_by() -> list[Label]:
    return ["rule_id", "account"]


class Route(StrictModel):
    """First match wins, unless a matched route says ``continue``."""

    # ``continue`` is a Python keyword: the field has another name, the files (and the
    # canonical form signed into bundles) use the alias.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True,
                              serialize_by_alias=True)

    name: Name
    match: Matchers = Matchers()
    receiver: Name
    #: Active only inside any of these windows / only outside all of those.
    active_in: list[Name] = Field(default_factory=list)
    active_outside: list[Name] = Field(default_factory=list)
    group_by: list[Label] = Field(default_factory=_default_group_by)
    group_wait_s: Seconds = 30
    group_interval_s: Seconds = 300
    repeat_interval_s: Seconds = 4 * 3600
    key_period_repeat_interval_s: Seconds = 1800
    escalation: Name | None = None
    continue_: bool = Field(default=False, alias="continue")


class Inhibition(StrictModel):
    """An open alert matching ``source`` mutes alerts matching ``target`` with ``equal`` labels."""

    name: Name
    source: Matchers
    target: Matchers
    equal: list[Label] = Field(min_length=1)


class EscalationStep(StrictModel):
    """Notify one duty position (through ``receiver``, else the route's), then wait for an ack."""

    notify: Position
    receiver: Name | None = None
    wait_s: Seconds = 900
    key_period_wait_s: Seconds = 300
    active_in: list[Name] = Field(default_factory=list)
    active_outside: list[Name] = Field(default_factory=list)


class Escalation(StrictModel):
    steps: list[EscalationStep] = Field(min_length=1, max_length=20)
    #: Times the whole chain runs again after its last step when still unacknowledged.
    repeat: int = Field(default=2, ge=0, le=20)
    #: An acknowledged alert left without a status change this long re-escalates.
    unacknowledged_after_s: Seconds = 1800
    key_period_unacknowledged_after_s: Seconds = 900


class AlertingPolicy(PolicyDocument):
    """Alert routing and the duty roster; see the module docstring."""

    KIND: ClassVar[str] = "alerting"
    #: Only the collector's router reads it; agents are never sent the roster's contacts.
    AGENT_READS: ClassVar[bool] = False
    rules: list[object] = Field(default_factory=list, max_length=0)
    calendar: CalendarSection = CalendarSection()
    windows: dict[Name, Window] = Field(default_factory=dict)
    people: dict[Name, Person] = Field(default_factory=dict)
    duty: DutySection = DutySection()
    receivers: dict[Name, Receiver] = Field(default_factory=dict)
    routes: list[Route] = Field(default_factory=list)
    inhibitions: list[Inhibition] = Field(default_factory=list)
    escalations: dict[Name, Escalation] = Field(default_factory=dict)
    #: How long a signed acknowledgement link in a notification stays valid.
    ack_link_valid_s: Seconds = 24 * 3600

    def lint(self) -> list[LintProblem]:
        """Unknown receivers, people, shifts, windows and chains; contradictory calendar days."""
        problems = super().lint()
        problems.extend(self.calendar.lint(("calendar",)))
        for index, route in enumerate(self.routes):
            at: KeyPath = ("routes", index)
            problems += self._known((*at, "receiver"), route.receiver, self.receivers, "receiver")
            if route.escalation is not None:
                problems += self._known(
                    (*at, "escalation"), route.escalation, self.escalations, "escalation"
                )
            problems += self._windows(at, route.active_in, route.active_outside)
        for name, chain in self.escalations.items():
            for index, step in enumerate(chain.steps):
                at = ("escalations", name, "steps", index)
                if step.receiver is not None:
                    problems += self._known((*at, "receiver"), step.receiver, self.receivers,
                                            "receiver")
                problems += self._windows(at, step.active_in, step.active_outside)
        for index, rotation in enumerate(self.duty.rotations):
            at = ("duty", "rotations", index)
            for position, shift in enumerate(rotation.shifts):
                problems += self._known((*at, "shifts", position), shift, self.duty.shifts, "shift")
            for position, person in enumerate(rotation.members):
                problems += self._known((*at, "members", position), person, self.people, "person")
        for index, override in enumerate(self.duty.overrides):
            at = ("duty", "overrides", index)
            problems += self._known((*at, "shift"), override.shift, self.duty.shifts, "shift")
            problems += self._known((*at, "person"), override.person, self.people, "person")
        for index, leave in enumerate(self.duty.leave):
            problems += self._known(("duty", "leave", index, "person"), leave.person, self.people,
                                    "person")
            if leave.end < leave.start:
                problems.append(LintProblem(("duty", "leave", index, "end"),
                                            f"leave ends {leave.end}, before it starts",
                                            "swap start and end"))
        names = [route.name for route in self.routes]
        for index, name in enumerate(names):
            if name in names[:index]:
                problems.append(LintProblem(("routes", index, "name"),
                                            f"route name {name!r} appears twice",
                                            "give each route its own name"))
        return problems

    def _windows(self, at: KeyPath, inside: list[str], outside: list[str]) -> list[LintProblem]:
        problems: list[LintProblem] = []
        for field, names in (("active_in", inside), ("active_outside", outside)):
            for position, window in enumerate(names):
                problems += self._known((*at, field, position), window, self.windows, "window")
        return problems

    @staticmethod
    def _known(at: KeyPath, name: str, known: Mapping[str, object], what: str) -> list[LintProblem]:
        if name in known:
            return []
        listed = ", ".join(sorted(known)) or "none defined"
        return [LintProblem(at, f"names unknown {what} {name!r} (known: {listed})",
                            f"define {what} {name!r}, or correct the name")]


register_policy_kinds(AlertingPolicy)
