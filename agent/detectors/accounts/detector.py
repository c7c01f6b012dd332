"""The accounts detector: holds every contractor account to its role. Pure: no I/O, no clock.

It keeps a little state between observations, all bounded: each account's
groups as last resolved (so group-selected contractors are recognised), the
live sessions (removable storage and unattributed file events are judged
against who is logged in), recent login failures (bursts), and when each
(rule, account) last fired (a login seen by logind *and* in the auth log is
reported once).

Hours are judged at the observation's own time, in Asia/Shanghai, against
the role's window plus its grace, the statutory calendar with the site's
overrides, and key periods.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any, ClassVar

from agent.calendar_cn import local_time
from agent.detectors.accounts.activity import ActivityRules
from agent.detectors.accounts.evidence import AccountFileEvidence, AccountLoginEvidence
from agent.detectors.accounts.logins import LoginRules
from agent.detectors.accounts.observations import AuthRecord, MountObserved
from agent.detectors.accounts.policy import AccountsPolicy
from agent.detectors.accounts.state import DESCRIPTION, PRIVILEGE_TOOLS, REPEAT_SUPPRESS
from agent.events import Finding


class AccountsDetector(LoginRules, ActivityRules):
    """See the module docstring."""

    name: ClassVar[str] = "accounts"
    policy_section: ClassVar[str] = "accounts"
    description: ClassVar[str] = DESCRIPTION

    def evaluate(self, observation: Any, policy: AccountsPolicy, now: datetime) -> list[Finding]:
        handlers: dict[str, Callable[[Any, AccountsPolicy], Iterator[Finding]]] = {
            "session": self._session,
            "auth": self._auth,
            "process": self._process,
            "groups": self._group_state,
            "mount": self._mount,
            "file": self._file,
            "tamper": self._tamper,
        }
        return list(handlers[observation.type](observation, policy))

    def idle(self) -> bool:
        """Nothing waits for ``finalize`` to forget."""
        return not (self._failures or self._last_fired or self._burst_at)

    def finalize(self, policy: AccountsPolicy, now: datetime) -> list[Finding]:
        """Forget failures and suppressions older than any window that could still use them."""
        horizon = now - max(REPEAT_SUPPRESS, timedelta(seconds=self._burst_window(policy)))
        for account in list(self._failures):
            failures = self._failures[account]
            while failures and failures[0][0] < horizon:
                failures.popleft()
            if not failures:
                del self._failures[account]
        self._last_fired = {k: v for k, v in self._last_fired.items() if v >= horizon}
        self._burst_at = {k: v for k, v in self._burst_at.items() if v >= horizon}
        return []

    def _auth(self, rec: AuthRecord, policy: AccountsPolicy) -> Iterator[Finding]:
        action = rec.action
        if action in ("session_open", "session_close") and rec.target is not None:
            if action == "session_open" and rec.target in self._live:
                return  # logind already told us about this login
            yield from self._session_record(
                policy,
                rec.target,
                "open" if action == "session_open" else "close",
                _session_key(rec),
                rec.time,
                rec.service,
                rec.remote_host,
                "authlog",
            )
        if action in ("login_success", "session_open") and rec.target:
            if action == "session_open" and rec.target in self._live:
                return
            yield from self._login(
                policy,
                rec.target,
                rec.time,
                rec.host,
                rec.service or rec.program,
                rec.remote_host,
                "authlog",
            )
        elif action == "login_failure" and rec.target:
            yield from self._failure(policy, rec)
        elif action == "account_expired" and rec.target:
            who = self._resolve(policy, rec.target)
            if who is not None:
                local = local_time(rec.time)
                evidence = AccountLoginEvidence(
                    **self._who(who),
                    local_time=local.isoformat(timespec="seconds"),
                    day_kind=policy.work_calendar.day_kind(local.date()).value,
                    service=rec.service or rec.program,
                    remote_host=rec.remote_host,
                    contract_end=str(who.role.contract.end) if who.role.contract.end else None,
                    source="authlog:account_expired",
                )
                yield from self._finding(
                    policy,
                    "accounts.login-outside-contract",
                    "account.login",
                    f"账号已过期的外包账号 {rec.target} 尝试登录 {rec.host}（{rec.program}）",
                    evidence,
                    rec.time,
                    suppress_key=rec.target,
                )
        elif action in PRIVILEGE_TOOLS:
            yield from self._privilege(policy, rec)
        elif (
            action in ("group_member_added", "user_added", "user_changed", "group_member_removed")
            and rec.target
        ):
            yield from self._changed(policy, rec)
        elif action == "password_changed" and rec.actor and rec.target:
            yield from self._password_reset(policy, rec.actor, rec.target, rec)
        elif action == "mount" and rec.actor:
            yield from self._mount(
                MountObserved(
                    time=rec.time,
                    host=rec.host,
                    device=rec.device,
                    mountpoint=rec.mountpoint,
                    removable=True,  # udisksd mounts media on a user's behalf
                    account=rec.actor,
                    source="udisks",
                ),
                policy,
            )
        elif action == "cron_edit" and rec.actor:
            who = self._resolve(policy, rec.actor)
            if who is not None:
                file_evidence = AccountFileEvidence(
                    **self._who(who),
                    path=f"crontab:{rec.actor}",
                    action=rec.command or "edit",
                    attribution="authlog",
                )
                yield from self._finding(
                    policy,
                    "accounts.persistence",
                    "account.persistence",
                    f"外包账号 {rec.actor} 修改了计划任务（crontab，{rec.command or '编辑'}）",
                    file_evidence,
                    rec.time,
                )


def _session_key(rec: AuthRecord) -> str:
    """PAM's open and close lines share the pid; logind's name its session."""
    if rec.program == "systemd-logind":
        return f"logind:{rec.command}"
    return f"{rec.program}[{rec.pid}]"
