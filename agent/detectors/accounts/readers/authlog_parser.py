"""Parse authentication and account-management log lines into ``AuthRecord``s.

Two framings carry the same messages:

* syslog files (``/var/log/auth.log``, ``/var/log/secure``), in the
  traditional ``Nov 27 22:20:40 host prog[pid]: msg`` form or rsyslog's
  RFC 3339 form ``2026-11-27T22:20:40.123456+08:00 host prog[pid]: msg``;
* journal JSON (``journalctl -o json``): ``SYSLOG_IDENTIFIER``, ``_PID``,
  ``MESSAGE``, ``__REALTIME_TIMESTAMP``.

``parse_message`` then reads the message of sshd, sudo, su, login,
gdm/lightdm (their PAM lines), systemd-logind, useradd, usermod, userdel,
groupadd, gpasswd, passwd, chpasswd, crontab/CRON, udisksd, pkexec and
polkitd. A line it does not recognise is ``None``; nothing here raises on bad
input. Lines come from the real programs: see the fixtures' README.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import Any, Final

from agent.detectors.accounts.observations import AuthRecord

MAX_LINE: Final = 8192

_RFC3339 = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d))\s+"
    r"(?P<host>\S+)\s+(?P<prog>[^\s\[:]+)(?:\[(?P<pid>\d+)\])?:\s?(?P<msg>.*)$"
)
_BSD = re.compile(
    r"^(?P<ts>[A-Z][a-z]{2}\s+\d{1,2}\s\d\d:\d\d:\d\d)\s+"
    r"(?P<host>\S+)\s+(?P<prog>[^\s\[:]+)(?:\[(?P<pid>\d+)\])?:\s?(?P<msg>.*)$"
)

_PAM = re.compile(r"^pam_unix\((?P<service>[^:]+):(?P<facility>\w+)\):\s*(?P<rest>.*)$")
_PAM_SESSION = re.compile(
    r"^session (?P<what>opened|closed) for user (?P<user>[^\s(]+)(?:\(uid=\d+\))?"
    r"(?: by (?P<by>[^\s(]*)(?:\(uid=\d+\))?)?"
)
_PAM_KV = re.compile(r"(\w+)=(\S*)")
_SSHD_ACCEPTED = re.compile(
    r"^Accepted (?P<method>\S+) for (?P<user>\S+) from (?P<ip>\S+) port \d+"
)
_SSHD_FAILED = re.compile(
    r"^Failed (?P<method>\S+) for (?:invalid user )?(?P<user>\S+) from (?P<ip>\S+) port \d+"
)
_SSHD_INVALID = re.compile(r"^Invalid user (?P<user>\S*) from (?P<ip>\S+)")
_EXPIRED = re.compile(r"^account (?P<user>\S+) has expired")
_SUDO = re.compile(r"^\s*(?P<user>\S+) : (?P<rest>.*)$")
_SU_TO = re.compile(
    r"^(?P<failed>FAILED SU )?\(to (?P<target>[^)]+)\) (?P<user>\S+) on (?P<tty>\S+)"
)
_SU_OLD = re.compile(r"^(?P<ok>FAILED|Successful) su for (?P<target>\S+) by (?P<user>\S+)")
_LOGIND_NEW = re.compile(r"^New session '?(?P<session>[^\s']+)'? of user '?(?P<user>[^\s'.]+)'?")
_LOGIND_REMOVED = re.compile(r"^Removed session '?(?P<session>[^\s'.]+)'?\.?")
_USERADD_NEW = re.compile(r"^new user: name=(?P<user>[^,]+),")
_GROUPADD_NEW = re.compile(r"^new group: name=(?P<group>[^,]+),")
_ADD_TO_GROUP = re.compile(r"^add '(?P<user>[^']+)' to group '(?P<group>[^']+)'")
_DEL_FROM_GROUP = re.compile(r"^delete '(?P<user>[^']+)' from group '(?P<group>[^']+)'")
_USERMOD_CHANGE = re.compile(r"^(?:change|lock|unlock) user '(?P<user>[^']+)'")
_USERDEL = re.compile(r"^delete user '(?P<user>[^']+)'")
_GPASSWD_ADD = re.compile(r"^user (?P<user>\S+) added by (?P<by>\S+) to group (?P<group>\S+)")
_GPASSWD_DEL = re.compile(r"^user (?P<user>\S+) removed by (?P<by>\S+) from group (?P<group>\S+)")
_PASSWORD_CHANGED = re.compile(r"^password changed for (?P<user>\S+)")
_CRONTAB = re.compile(r"^\((?P<user>[^)]+)\) (?P<what>REPLACE|BEGIN EDIT|END EDIT|DELETE) \(")
_UDISKS_MOUNT = re.compile(
    r"^Mounted (?P<device>\S+) (?:\([^)]*\) )?at (?P<mnt>.+?) on behalf of uid (?P<uid>\d+)"
)
_PKEXEC = re.compile(
    r"^(?P<user>\S+): (?P<what>Executing command|Error executing command as another user: "
    r"[^\[]*)(?P<rest>.*)$"
)
_BRACKET = re.compile(r"\[(\w+)=([^\]]*)\]")
_POLKIT_FAIL = re.compile(
    r"FAILED to authenticate to gain authorization for action (?P<action>\S+).*"
    r"\[(?P<cmd>[^\]]*)\] \(owned by unix-user:(?P<user>[^)]+)\)"
)

#: PAM services whose failures and sessions are logins of a person at a seat or over ssh.
LOGIN_SERVICES: Final = frozenset(
    {
        "sshd",
        "login",
        "gdm-password",
        "gdm-fingerprint",
        "gdm-smartcard",
        "lightdm",
        "lightdm-greeter",
        "sddm",
        "xrdp-sesman",
        "su",
        "su-l",
        "kde",
        "cinnamon-screensaver",
        "mate-screensaver",
        "lxdm",
        "deepin-auth",
        "dde-lock",
        "ukui-screensaver-qt",
    }
)


#: Whether a record with this actor and target matters to the caller; asked before the
#: record is built, so the many lines about nobody of interest cost no validation.
Concerns = Callable[[str | None, str | None], bool]


def parse_syslog_line(
    line: str, *, year: int | None = None, tz: tzinfo = UTC, concerns: Concerns | None = None
) -> AuthRecord | None:
    """One syslog-file line; a BSD timestamp takes ``year`` (default: this year) and ``tz``."""
    line = line.rstrip("\r\n")[:MAX_LINE]
    match = _RFC3339.match(line)
    if match is not None:
        try:
            when = datetime.fromisoformat(match["ts"].replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        match = _BSD.match(line)
        if match is None:
            return None
        stamp = _bsd_stamp(year or datetime.now(tz).year, match["ts"])
        if stamp is None:
            return None
        when = stamp.replace(tzinfo=tz)
    pid = int(match["pid"]) if match["pid"] else None
    return parse_message(match["prog"], pid, match["msg"], when, match["host"], line, concerns)


@functools.lru_cache(maxsize=64)
def _bsd_stamp(year: int, stamp: str) -> datetime | None:
    """A BSD syslog time as naive local time; cached, since a busy log repeats each second."""
    try:
        return datetime.strptime(f"{year} {' '.join(stamp.split())}", "%Y %b %d %H:%M:%S")
    except ValueError:
        return None


def parse_json_object(line: str | bytes) -> dict[str, Any] | None:
    """One JSON object per line (``journalctl -o json``); None for anything else."""
    try:
        value = json.loads(line[: MAX_LINE * 4])
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def parse_journal_entry(
    line: str | dict[str, Any], concerns: Concerns | None = None
) -> AuthRecord | None:
    """One ``journalctl -o json`` line (or its decoded object)."""
    entry = parse_json_object(line) if isinstance(line, str) else line
    if entry is None:
        return None
    message = entry.get("MESSAGE")
    program = entry.get("SYSLOG_IDENTIFIER") or entry.get("_COMM")
    if not isinstance(message, str) or not isinstance(program, str):
        return None  # binary MESSAGE fields arrive as byte arrays; none of ours are
    try:
        when = datetime.fromtimestamp(int(entry["__REALTIME_TIMESTAMP"]) / 1e6, UTC)
        pid = int(entry["_PID"]) if "_PID" in entry else None
    except (KeyError, TypeError, ValueError):
        return None
    host = str(entry.get("_HOSTNAME", ""))
    raw = f"{program}[{pid}]: {message}" if pid else f"{program}: {message}"
    return parse_message(program, pid, message[:MAX_LINE], when, host, raw, concerns)


def parse_message(
    program: str,
    pid: int | None,
    message: str,
    when: datetime,
    host: str,
    raw: str = "",
    concerns: Concerns | None = None,
) -> AuthRecord | None:
    """Read one message of a known program; None when it says nothing the detector uses,
    or nothing about anyone ``concerns`` cares for."""
    parser = _PROGRAMS.get(program.lower())
    fields = parser(message) if parser is not None else None
    if fields is None and message.startswith("pam_unix("):
        fields = _pam(message)
    if fields is None:
        return None
    if concerns is not None and not concerns(fields.get("actor"), fields.get("target")):
        return None
    values = {k: (v[:4096] if isinstance(v, str) else v) for k, v in fields.items()}
    values.update(time=when, host=host[:256], program=program[:256], pid=pid, raw=raw[:4096])
    return AuthRecord.model_validate(values)


Fields = dict[str, Any]


def _pam(message: str) -> Fields | None:
    match = _PAM.match(message)
    if match is None:
        return None
    service, facility, rest = match["service"], match["facility"], match["rest"]
    if facility == "session":
        session = _PAM_SESSION.match(rest)
        if session is None or service not in LOGIN_SERVICES:
            return None  # sudo, cron and systemd-user sessions are not logins
        return {
            "action": "session_open" if session["what"] == "opened" else "session_close",
            "target": session["user"],
            "actor": session["by"] or None,
            "service": service,
        }
    if facility == "auth" and rest.startswith("authentication failure"):
        if service in ("sshd", "sudo", "su", "su-l", "polkit-1"):
            return None  # those programs write their own failure line; count it once
        values = dict(_PAM_KV.findall(rest))
        user = values.get("user")
        if not user:
            return None
        return {
            "action": "login_failure",
            "target": user,
            "service": service,
            "remote_host": values.get("rhost", ""),
            "tty": values.get("tty", ""),
        }
    if facility == "account":
        expired = _EXPIRED.match(rest)
        if expired is not None:
            return {"action": "account_expired", "target": expired["user"], "service": service}
    if facility == "chauthtok":
        changed = _PASSWORD_CHANGED.match(rest)
        if changed is not None:
            return {"action": "password_changed", "target": changed["user"], "service": service}
    return None


def _sshd(message: str) -> Fields | None:
    if (m := _SSHD_ACCEPTED.match(message)) is not None:
        return {
            "action": "login_success",
            "target": m["user"],
            "remote_host": m["ip"],
            "service": "sshd",
            "command": m["method"],
        }
    if (m := _SSHD_FAILED.match(message)) is not None:
        return {
            "action": "login_failure",
            "target": m["user"],
            "remote_host": m["ip"],
            "service": "sshd",
        }
    if (m := _SSHD_INVALID.match(message)) is not None:
        return {
            "action": "login_failure",
            "target": m["user"] or "(empty)",
            "remote_host": m["ip"],
            "service": "sshd",
        }
    return _pam(message)


def _sudo(message: str) -> Fields | None:
    match = _SUDO.match(message)
    if match is None:
        return _pam(message)
    parts = [p.strip() for p in match["rest"].split(" ; ")]
    values = dict(p.split("=", 1) for p in parts if "=" in p and not p.startswith("COMMAND="))
    command = next((p[len("COMMAND=") :] for p in parts if p.startswith("COMMAND=")), "")
    refused = any("=" not in p for p in parts[:1])  # "user NOT in sudoers", "3 incorrect ..."
    return {
        "action": "sudo_refused" if refused else "sudo",
        "actor": match["user"],
        "target": values.get("USER", "root"),
        "tty": values.get("TTY", ""),
        "command": command,
        "service": parts[0] if refused else "sudo",
    }


def _su(message: str) -> Fields | None:
    if (m := _SU_TO.match(message)) is not None:
        return {
            "action": "su_failure" if m["failed"] else "su",
            "actor": m["user"],
            "target": m["target"],
            "tty": m["tty"],
            "service": "su",
        }
    if (m := _SU_OLD.match(message)) is not None:
        return {
            "action": "su" if m["ok"] == "Successful" else "su_failure",
            "actor": m["user"],
            "target": m["target"],
            "service": "su",
        }
    return _pam(message)


def _logind(message: str) -> Fields | None:
    if (m := _LOGIND_NEW.match(message)) is not None:
        return {
            "action": "session_open",
            "target": m["user"],
            "command": m["session"],
            "service": "systemd-logind",
        }
    if (m := _LOGIND_REMOVED.match(message)) is not None:
        return {"action": "session_close", "command": m["session"], "service": "systemd-logind"}
    return None


def _shadow_tools(message: str) -> Fields | None:
    """useradd, usermod, userdel, groupadd, gpasswd: the shadow suite's audit lines."""
    if (m := _USERADD_NEW.match(message)) is not None:
        return {"action": "user_added", "target": m["user"]}
    if (m := _GROUPADD_NEW.match(message)) is not None:
        return {"action": "group_added", "group": m["group"]}
    if (m := _ADD_TO_GROUP.match(message)) is not None:
        return {"action": "group_member_added", "target": m["user"], "group": m["group"]}
    if (m := _DEL_FROM_GROUP.match(message)) is not None:
        return {"action": "group_member_removed", "target": m["user"], "group": m["group"]}
    if (m := _GPASSWD_ADD.match(message)) is not None:
        return {
            "action": "group_member_added",
            "target": m["user"],
            "actor": m["by"],
            "group": m["group"],
        }
    if (m := _GPASSWD_DEL.match(message)) is not None:
        return {
            "action": "group_member_removed",
            "target": m["user"],
            "actor": m["by"],
            "group": m["group"],
        }
    if (m := _USERMOD_CHANGE.match(message)) is not None:
        return {"action": "user_changed", "target": m["user"], "command": message[:200]}
    if (m := _USERDEL.match(message)) is not None:
        return {"action": "user_deleted", "target": m["user"]}
    return _pam(message)


def _cron(message: str) -> Fields | None:
    if (m := _CRONTAB.match(message)) is not None:
        return {"action": "cron_edit", "actor": m["user"], "command": m["what"]}
    return None  # CRON's own pam sessions and CMD lines are the scheduler, not a person


def _udisksd(message: str) -> Fields | None:
    if (m := _UDISKS_MOUNT.match(message)) is not None:
        return {
            "action": "mount",
            "device": m["device"],
            "mountpoint": m["mnt"],
            "actor": f"#{m['uid']}",
        }
    return None


def _pkexec(message: str) -> Fields | None:
    if (m := _PKEXEC.match(message)) is None:
        return None
    values = dict(_BRACKET.findall(m["rest"]))
    return {
        "action": "pkexec" if m["what"] == "Executing command" else "pkexec_failure",
        "actor": m["user"],
        "target": values.get("USER"),
        "tty": values.get("TTY", ""),
        "command": values.get("COMMAND", ""),
        "service": "pkexec",
    }


def _polkitd(message: str) -> Fields | None:
    if (m := _POLKIT_FAIL.search(message)) is None or "pkexec" not in m["cmd"]:
        return None
    return {
        "action": "pkexec_failure",
        "actor": m["user"],
        "command": m["cmd"],
        "service": "polkit",
    }


_PROGRAMS: Final[dict[str, Callable[[str], Fields | None]]] = {
    "sshd": _sshd,
    "sshd-session": _sshd,
    "sudo": _sudo,
    "su": _su,
    "systemd-logind": _logind,
    "useradd": _shadow_tools,
    "usermod": _shadow_tools,
    "userdel": _shadow_tools,
    "groupadd": _shadow_tools,
    "gpasswd": _shadow_tools,
    "crontab": _cron,
    "cron": _cron,
    "udisksd": _udisksd,
    "pkexec": _pkexec,
    "polkitd": _polkitd,
}
