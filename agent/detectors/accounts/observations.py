"""What the accounts sources observe: one model per kind, a union discriminated by ``type``.

Observations are plain data (rule cases are written against them). Each
carries the time it happened, which the detector judges hours by, and the
account when the source could tell it (``None`` when it cannot, e.g. a
file event from inotify, which does not know who wrote).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

Text = Annotated[str, StringConstraints(max_length=4096)]
Short = Annotated[str, StringConstraints(max_length=256)]


class _Observation(BaseModel):
    # Built at the first observation of each kind, not when the registry is imported.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    time: AwareDatetime
    host: Short = ""


class SessionObserved(_Observation):
    """A login session opened, closed, or found present when the agent started."""

    type: Literal["session"] = "session"
    action: Literal["open", "close", "present"]
    account: Short
    session_id: Short = ""
    service: Short = ""  # sshd, login, gdm-password, lightdm, su-l, ...
    tty: Short = ""
    remote_host: Short = ""
    source: Literal["logind", "utmp", "authlog", "case"] = "case"


AuthAction = Literal[
    "login_success",  # sshd Accepted, login, gdm/lightdm: credentials accepted
    "login_failure",  # wrong password, unknown user, pam_unix auth failure
    "account_expired",  # pam_unix: account has expired
    "session_open",
    "session_close",
    "sudo",  # sudo ran a command
    "sudo_refused",  # NOT in sudoers, incorrect password attempts, auth failure
    "su",
    "su_failure",
    "pkexec",
    "pkexec_failure",
    "user_added",
    "user_changed",  # usermod, chage, chsh...
    "user_deleted",
    "group_member_added",
    "group_member_removed",
    "group_added",
    "password_changed",
    "cron_edit",
    "mount",
    "other",
]


class AuthRecord(_Observation):
    """One parsed authentication or account-management log line.

    ``actor`` is who acted (the sudo caller, the su caller, the admin running
    gpasswd), ``target`` whom it was about (su's target user, the user added
    to a group, the password changed). ``raw`` is the original line, bounded.
    """

    type: Literal["auth"] = "auth"
    program: Short
    pid: int | None = None
    action: AuthAction
    actor: Short | None = None
    target: Short | None = None
    group: Short | None = None
    service: Short = ""
    tty: Short = ""
    remote_host: Short = ""
    command: Text = ""
    device: Short = ""
    mountpoint: Short = ""
    raw: Text = ""


class ProcessStarted(_Observation):
    type: Literal["process"] = "process"
    pid: int
    account: Short
    name: Short
    exe: Text = ""
    cmdline: Text = ""
    sha256: Annotated[str, StringConstraints(pattern=r"^([0-9a-f]{64})?$")] = ""


class GroupState(_Observation):
    """An account's full group list (primary included), as NSS resolves it now."""

    type: Literal["groups"] = "groups"
    account: Short
    groups: list[Short] = Field(max_length=4096)


class MountObserved(_Observation):
    type: Literal["mount"] = "mount"
    action: Literal["mounted", "unmounted"] = "mounted"
    device: Short
    mountpoint: Text
    fstype: Short = ""
    removable: bool
    vendor_id: Short = ""
    product_id: Short = ""
    serial: Short = ""
    #: The account on whose behalf it was mounted, when known (udisksd says so).
    account: Short | None = None
    #: ``mountinfo``: seen in the mount table, identity read from sysfs; ``udisks``: from
    #: udisksd's log line, which names the account but not the device's identity.
    source: Literal["mountinfo", "udisks", "case"] = "case"


class FileTouched(_Observation):
    """A file event under a watched path.

    ``account`` is set only when the platform tells who did it;
    ``attribution`` says how it was known (``file-owner`` for a file just
    created, ``none`` for inotify events on existing files).
    """

    type: Literal["file"] = "file"
    path: Text
    action: Literal["created", "modified", "deleted", "moved", "opened"]
    purpose: Literal["protected", "persistence", "tamper"]
    account: Short | None = None
    attribution: Literal["auditd", "file-owner", "none"] = "none"


class AgentTampered(_Observation):
    """The agent or the logs that trace people: cleared, stopped, truncated."""

    type: Literal["tamper"] = "tamper"
    what: Literal["log_truncated", "history_cleared", "agent_stopped", "agent_file_changed"]
    path: Text = ""
    account: Short | None = None


AccountsObservation = Annotated[
    SessionObserved
    | AuthRecord
    | ProcessStarted
    | GroupState
    | MountObserved
    | FileTouched
    | AgentTampered,
    Field(discriminator="type"),
]


def observed_at(observation: _Observation) -> datetime:
    return observation.time
