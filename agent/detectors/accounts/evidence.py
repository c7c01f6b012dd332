"""Typed evidence of every ``account.*`` event kind (``DetectorSpec.evidence_models``).

The agent's accounts detector makes most of them; ``account.shared``,
``account.first_seen`` and ``account.daily_score`` are made by the
collector's correlation across hosts, from the same models.
"""

from __future__ import annotations

import uuid
from typing import Annotated, ClassVar, Final

from pydantic import AwareDatetime, Field, StringConstraints

from agent.events import Evidence

_Name = Annotated[str, StringConstraints(max_length=256)]
_Text = Annotated[str, StringConstraints(max_length=4096)]


class AccountEvidence(Evidence):
    """Who: the contractor account, its role and the staff member answerable for it."""

    account: _Name | None = None
    role: _Name | None = None
    sponsor: _Name | None = None


class AccountLoginEvidence(AccountEvidence):
    """``account.login``: a session or accepted login outside the role's bounds."""

    local_time: _Name
    day_kind: _Name
    service: _Name = ""
    remote_host: _Name = ""
    allowed_hours: _Name = ""
    key_period: _Name | None = None
    contract_start: _Name | None = None
    contract_end: _Name | None = None
    assigned_hosts: list[_Name] = Field(default_factory=list, max_length=64)
    source: _Name = ""


class AccountSessionEvidence(AccountEvidence):
    """``account.session``: a contractor session opened, closed, or present at agent start.

    Not an alarm: the collector correlates these across hosts (shared accounts,
    first login on a host).
    """

    action: Annotated[str, StringConstraints(pattern=r"^(open|close|present)$")]
    session_id: _Name
    service: _Name = ""
    remote_host: _Name = ""
    source: _Name = ""


class AccountPrivilegeEvidence(AccountEvidence):
    """``account.privilege``: sudo, su or pkexec used or attempted."""

    FINGERPRINT_FIELDS: ClassVar[tuple[str, ...]] = ("tool", "target")

    tool: _Name
    outcome: Annotated[str, StringConstraints(pattern=r"^(success|failure)$")]
    target: _Name | None = None
    command: _Text = ""
    tty: _Name = ""
    raw: _Text = ""


class AccountGroupEvidence(AccountEvidence):
    """``account.group``: the account holds forbidden groups (state)."""

    forbidden: list[_Name] = Field(max_length=256)
    groups: list[_Name] = Field(max_length=4096)


class AccountChangeEvidence(AccountEvidence):
    """``account.change``: a contractor added to a group or changed; a password reset."""

    FINGERPRINT_FIELDS: ClassVar[tuple[str, ...]] = ("action", "group")

    action: _Name
    actor: _Name | None = None
    target: _Name | None = None
    group: _Name | None = None
    raw: _Text = ""


class AccountProgramEvidence(AccountEvidence):
    """``account.program``: a forbidden program started by a contractor."""

    FINGERPRINT_FIELDS: ClassVar[tuple[str, ...]] = ("name",)

    pid: int = Field(ge=0)
    name: _Name
    exe: _Text = ""
    cmdline: _Text = ""
    sha256: _Name = ""
    matched: _Name


class AccountRemovableEvidence(AccountEvidence):
    """``account.removable``: removable storage mounted while a contractor was logged in."""

    FINGERPRINT_FIELDS: ClassVar[tuple[str, ...]] = ("vendor_id", "product_id", "serial")

    device: _Name
    mountpoint: _Text
    vendor_id: _Name = ""
    product_id: _Name = ""
    serial: _Name = ""
    approved: bool
    live_sessions: list[_Name] = Field(default_factory=list, max_length=64)


class AccountFileEvidence(AccountEvidence):
    """``account.file`` / ``account.persistence``: a watched path touched.

    ``attribution`` says how the account was known; with ``none`` the
    platform could not tell, and ``candidates`` are the contractors logged in.
    """

    FINGERPRINT_FIELDS: ClassVar[tuple[str, ...]] = ("path",)

    path: _Text
    action: _Name
    attribution: _Name
    candidates: list[_Name] = Field(default_factory=list, max_length=64)


class AccountBurstEvidence(AccountEvidence):
    """``account.burst``: failed logins in a window, and whether a success followed."""

    failures: int = Field(ge=1)
    window_s: int = Field(ge=1)
    first_failure: AwareDatetime
    last_failure: AwareDatetime
    followed_by_success: bool
    remote_hosts: list[_Name] = Field(default_factory=list, max_length=64)


class AccountTamperEvidence(AccountEvidence):
    """``account.tamper``: logs or history cleared, the agent stopped or its files touched."""

    FINGERPRINT_FIELDS: ClassVar[tuple[str, ...]] = ("what",)

    what: _Name
    path: _Text = ""
    candidates: list[_Name] = Field(default_factory=list, max_length=64)


class AccountSharedEvidence(AccountEvidence):
    """``account.shared`` (collector): live sessions on two hosts at once."""

    hosts: list[_Name] = Field(min_length=2, max_length=64)
    overlap_s: float = Field(ge=0)
    since: AwareDatetime


class AccountFirstSeenEvidence(AccountEvidence):
    """``account.first_seen`` (collector): first login on a host, or first privilege use."""

    host: _Name
    what: Annotated[str, StringConstraints(pattern=r"^(login|privilege)$")]
    source_event: uuid.UUID


class AccountScoreEvidence(AccountEvidence):
    """``account.daily_score`` (collector): several small odd things by one account in one day."""

    day: _Name
    score: int = Field(ge=0)
    contributions: dict[_Name, int] = Field(max_length=64)
    hosts: list[_Name] = Field(default_factory=list, max_length=64)


#: Every ``account.*`` kind with its evidence model.
ACCOUNT_EVIDENCE_MODELS: Final[dict[str, type[Evidence]]] = {
    "account.login": AccountLoginEvidence,
    "account.session": AccountSessionEvidence,
    "account.privilege": AccountPrivilegeEvidence,
    "account.group": AccountGroupEvidence,
    "account.change": AccountChangeEvidence,
    "account.program": AccountProgramEvidence,
    "account.removable": AccountRemovableEvidence,
    "account.file": AccountFileEvidence,
    "account.persistence": AccountFileEvidence,
    "account.burst": AccountBurstEvidence,
    "account.tamper": AccountTamperEvidence,
    "account.shared": AccountSharedEvidence,
    "account.first_seen": AccountFirstSeenEvidence,
    "account.daily_score": AccountScoreEvidence,
}
