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

import fnmatch
import posixpath
import shlex
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime, time, timedelta
from typing import Any, ClassVar, Final

from agent.calendar_cn import DayKind, local_time
from agent.detectors.accounts.observations import (
    AgentTampered,
    AuthRecord,
    FileTouched,
    GroupState,
    MountObserved,
    ProcessStarted,
    SessionObserved,
)
from agent.detectors.accounts.policy import AccountsPolicy, Hours, Resolved, Role
from agent.events import (
    AccountBurstEvidence,
    AccountChangeEvidence,
    AccountFileEvidence,
    AccountGroupEvidence,
    AccountLoginEvidence,
    AccountPrivilegeEvidence,
    AccountProgramEvidence,
    AccountRemovableEvidence,
    AccountSessionEvidence,
    AccountTamperEvidence,
    Evidence,
    Finding,
)

#: The same rule for the same account (and host) fires at most once in this span.
REPEAT_SUPPRESS: Final = timedelta(minutes=10)
MAX_TRACKED_ACCOUNTS: Final = 10_000
MAX_FAILURES_KEPT: Final = 1000

PRIVILEGE_TOOLS: Final = {
    "sudo": ("sudo", "success"),
    "sudo_refused": ("sudo", "failure"),
    "su": ("su", "success"),
    "su_failure": ("su", "failure"),
    "pkexec": ("pkexec", "success"),
    "pkexec_failure": ("pkexec", "failure"),
}
PASSWORD_TOOLS: Final = frozenset({"passwd", "chpasswd", "usermod", "chage"})
DESCRIPTION: Final = (
    "Holds contractor accounts to their role: hours, hosts, contract, privilege, "
    "programs, removable storage, protected paths, persistence and tampering."
)


def _hm(value: time) -> str:
    return value.strftime("%H:%M")


def _in_window(moment: time, hours: Hours, grace: timedelta) -> bool:
    """Whether a time of day lies in ``hours`` widened by ``grace`` on both sides."""
    day = date(2000, 1, 3)
    start = datetime.combine(day, hours.start) - grace
    end = datetime.combine(day, hours.end) + grace
    if hours.end <= hours.start:  # spans midnight
        end += timedelta(days=1)
    for shift in (-1, 0, 1):
        point = datetime.combine(day, moment) + timedelta(days=shift)
        if start <= point <= end:
            return True
    return False


class AccountsDetector:
    """See the module docstring."""

    name: ClassVar[str] = "accounts"
    policy_section: ClassVar[str] = "accounts"
    description: ClassVar[str] = DESCRIPTION

    def __init__(self) -> None:
        self._groups: dict[str, frozenset[str]] = {}
        self._forbidden_held: dict[str, frozenset[str]] = {}
        self._live: dict[str, set[str]] = {}
        self._failures: dict[str, deque[tuple[datetime, str]]] = {}
        self._burst_at: dict[str, datetime] = {}
        self._last_fired: dict[tuple[str, str, str], datetime] = {}

    # -- the interface ----------------------------------------------------------

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

    # -- helpers ----------------------------------------------------------------

    def _resolve(self, policy: AccountsPolicy, account: str | None) -> Resolved | None:
        if not account:
            return None
        return policy.resolve(account, self._groups.get(account, frozenset()))

    def _finding(
        self,
        policy: AccountsPolicy,
        rule_id: str,
        kind: str,
        summary: str,
        evidence: Evidence,
        at: datetime,
        *,
        exception_values: dict[str, Any] | None = None,
        suppress_key: str | None = None,
    ) -> Iterator[Finding]:
        """One finding for an enabled rule, unless an exception or a recent repeat holds it back."""
        rule = policy.rule(rule_id)
        if rule is None:
            return
        values = dict(exception_values or {})
        values.update(evidence.model_dump(exclude_none=True))
        if policy.exception_applies(rule, values, local_time(at).date()):
            return
        if suppress_key is not None:
            key = (rule_id, suppress_key, str(values.get("host", "")))
            previous = self._last_fired.get(key)
            if previous is not None and abs(at - previous) < REPEAT_SUPPRESS:
                return
            if len(self._last_fired) < MAX_TRACKED_ACCOUNTS * 4:
                self._last_fired[key] = at
        yield Finding(
            kind=kind,
            severity=rule.severity,
            rule_id=rule.id,
            summary=summary[:500],
            evidence=evidence.model_dump(mode="json", exclude_none=True),
            time=at,
        )

    def _who(self, who: Resolved) -> dict[str, Any]:
        return {"account": who.account, "role": who.role_name, "sponsor": who.sponsor}

    def _live_contractors(self, policy: AccountsPolicy) -> list[Resolved]:
        found = []
        for account, sessions in sorted(self._live.items()):
            who = self._resolve(policy, account) if sessions else None
            if who is not None:
                found.append(who)
        return found

    @staticmethod
    def _burst_window(policy: AccountsPolicy) -> int:
        rule = policy.rule("accounts.failed-login-burst")
        return (rule.match.window_s or 300) if rule is not None else 300

    # -- logins -----------------------------------------------------------------

    def _session(self, obs: SessionObserved, policy: AccountsPolicy) -> Iterator[Finding]:
        key = obs.session_id or f"{obs.service}:{obs.tty}"
        yield from self._session_record(
            policy,
            obs.account,
            obs.action,
            key,
            obs.time,
            obs.service,
            obs.remote_host,
            obs.source,
        )
        if obs.action == "close":
            sessions = self._live.get(obs.account)
            if sessions is not None:
                sessions.discard(key)
                if not sessions:
                    del self._live[obs.account]
            return
        if obs.account in self._live or len(self._live) < MAX_TRACKED_ACCOUNTS:
            self._live.setdefault(obs.account, set()).add(key)
        if obs.action == "open":
            yield from self._login(
                policy, obs.account, obs.time, obs.host, obs.service, obs.remote_host, obs.source
            )

    def _session_record(
        self,
        policy: AccountsPolicy,
        account: str,
        action: str,
        key: str,
        at: datetime,
        service: str,
        remote_host: str,
        source: str,
    ) -> Iterator[Finding]:
        """An info record of a contractor session, for the collector's cross-host view."""
        who = self._resolve(policy, account)
        if who is None:
            return
        evidence = AccountSessionEvidence(
            **self._who(who),
            action=action,
            session_id=key[:256],
            service=service,
            remote_host=remote_host,
            source=source,
        )
        verb = {"open": "登录", "close": "退出", "present": "在线（代理启动时已存在）"}[action]
        yield from self._finding(
            policy,
            "accounts.session",
            "account.session",
            f"外包账号 {account} 会话{verb}（会话 {key[:60]}）",
            evidence,
            at,
        )

    def _login(
        self,
        policy: AccountsPolicy,
        account: str,
        at: datetime,
        host: str,
        service: str,
        remote_host: str,
        source: str,
    ) -> Iterator[Finding]:
        who = self._resolve(policy, account)
        if who is None:
            return
        yield from self._burst_success(policy, who, at)
        role = who.role
        local = local_time(at)
        day = local.date()
        calendar = policy.work_calendar
        day_kind = calendar.day_kind(day)
        key_period = calendar.key_period(day)
        hours = role.key_period_hours if key_period and role.key_period_hours else role.hours
        hosts = policy.expand(role.hosts)
        evidence = AccountLoginEvidence(
            **self._who(who),
            local_time=local.isoformat(timespec="seconds"),
            day_kind=day_kind.value,
            service=service,
            remote_host=remote_host,
            allowed_hours=f"{_hm(hours.start)}-{_hm(hours.end)}±{role.grace_minutes}分钟",
            key_period=key_period.name if key_period else None,
            contract_start=str(role.contract.start) if role.contract.start else None,
            contract_end=str(role.contract.end) if role.contract.end else None,
            assigned_hosts=hosts[:64],
            source=source,
        )
        when = local.strftime("%Y-%m-%d %H:%M")
        extra = {"host": host}
        suppress = f"{account}@{host}"
        if who.disabled:
            yield from self._finding(
                policy,
                "accounts.login-disabled-account",
                "account.login",
                f"已停用的外包账号 {account} 在 {host} 登录（{when}，责任人 {who.sponsor}）",
                evidence,
                at,
                exception_values=extra,
                suppress_key=suppress,
            )
        contract = role.contract
        if (contract.start and day < contract.start) or (contract.end and day > contract.end):
            edge = "合同尚未开始" if contract.start and day < contract.start else "合同已到期"
            yield from self._finding(
                policy,
                "accounts.login-outside-contract",
                "account.login",
                f"外包账号 {account} 在{edge}后登录 {host}（{when}，合同期 "
                f"{contract.start or '—'} 至 {contract.end or '—'}，责任人 {who.sponsor}）",
                evidence,
                at,
                exception_values=extra,
                suppress_key=suppress,
            )
        if host and not any(fnmatch.fnmatchcase(host, pattern) for pattern in hosts):
            yield from self._finding(
                policy,
                "accounts.login-unassigned-host",
                "account.login",
                f"外包账号 {account} 登录了未分配给其岗位（{who.role_name}）的主机 {host}"
                f"（{when}）",
                evidence,
                at,
                exception_values=extra,
                suppress_key=suppress,
            )
        if not role.workdays_only:
            off_day = False
        elif day_kind is DayKind.HOLIDAY:
            name = calendar.holiday_name(day) or ""
            yield from self._finding(
                policy,
                "accounts.login-on-holiday",
                "account.login",
                f"外包账号 {account} 在法定节假日登录 {host}"
                f"（{when}{'，' + name if name else ''}）",
                evidence,
                at,
                exception_values=extra,
                suppress_key=suppress,
            )
            return
        else:
            off_day = not day_kind.is_workday
        in_hours = _in_window(local.time(), hours, timedelta(minutes=role.grace_minutes))
        if off_day or not in_hours:
            reason = day_kind.label if off_day else f"允许时段 {evidence.allowed_hours}"
            period = f"，重点时期：{key_period.name}" if key_period else ""
            yield from self._finding(
                policy,
                "accounts.login-outside-hours",
                "account.login",
                f"外包账号 {account} 在允许时段外登录 {host}（{when}，{reason}{period}）",
                evidence,
                at,
                exception_values=extra,
                suppress_key=suppress,
            )

    # -- auth log ---------------------------------------------------------------

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

    def _privilege(self, policy: AccountsPolicy, rec: AuthRecord) -> Iterator[Finding]:
        who = self._resolve(policy, rec.actor)
        if who is None:
            return
        tool, outcome = PRIVILEGE_TOOLS[rec.action]
        evidence = AccountPrivilegeEvidence(
            **self._who(who),
            tool=tool,
            outcome=outcome,
            target=rec.target,
            command=rec.command,
            tty=rec.tty,
            raw=rec.raw,
        )
        verb = "使用" if outcome == "success" else "尝试使用（被拒绝或失败）"
        onto = f"（目标用户 {rec.target}）" if rec.target else ""
        cmd = f"，命令 {rec.command[:120]}" if rec.command else ""
        rule_id = (
            "accounts.privilege-used" if outcome == "success" else "accounts.privilege-attempt"
        )
        yield from self._finding(
            policy,
            rule_id,
            "account.privilege",
            f"外包账号 {rec.actor} {verb} {tool}{onto}{cmd}（{rec.host}）",
            evidence,
            rec.time,
        )
        if rec.action == "sudo" and rec.command:
            target = _password_target(rec.command)
            if target is not None and target != rec.actor:
                yield from self._password_reset(policy, rec.actor or "", target, rec)

    def _password_reset(
        self, policy: AccountsPolicy, actor: str, target: str, rec: AuthRecord
    ) -> Iterator[Finding]:
        who = self._resolve(policy, actor)
        if who is None or actor == target:
            return
        evidence = AccountChangeEvidence(
            **self._who(who), action="password_reset", actor=actor, target=target, raw=rec.raw
        )
        yield from self._finding(
            policy,
            "accounts.password-reset-other",
            "account.change",
            f"外包账号 {actor} 重置了其他用户 {target} 的密码（{rec.host}）",
            evidence,
            rec.time,
        )

    def _changed(self, policy: AccountsPolicy, rec: AuthRecord) -> Iterator[Finding]:
        who = self._resolve(policy, rec.target)
        if who is None:
            return
        evidence = AccountChangeEvidence(
            **self._who(who),
            action=rec.action,
            actor=rec.actor,
            target=rec.target,
            group=rec.group,
            raw=rec.raw,
        )
        what = {
            "group_member_added": f"被加入组 {rec.group}",
            "group_member_removed": f"被移出组 {rec.group}",
            "user_added": "被创建",
            "user_changed": "的账号属性被修改",
        }[rec.action]
        by = f"（操作者 {rec.actor}）" if rec.actor else ""
        yield from self._finding(
            policy,
            "accounts.account-changed",
            "account.change",
            f"外包账号 {rec.target} {what}{by}（{rec.host}）",
            evidence,
            rec.time,
        )

    # -- failed-login bursts ------------------------------------------------------

    def _failure(self, policy: AccountsPolicy, rec: AuthRecord) -> Iterator[Finding]:
        account = rec.target or ""
        who = self._resolve(policy, account)
        rule = policy.rule("accounts.failed-login-burst")
        if who is None or rule is None:
            return
        window = timedelta(seconds=rule.match.window_s or 300)
        threshold = rule.match.threshold or 5
        failures = self._failures.get(account)
        if failures is None:
            if len(self._failures) >= MAX_TRACKED_ACCOUNTS:
                return
            failures = self._failures[account] = deque(maxlen=MAX_FAILURES_KEPT)
        failures.append((rec.time, rec.remote_host))
        while failures and failures[0][0] < rec.time - window:
            failures.popleft()
        if len(failures) < threshold:
            return
        self._burst_at[account] = rec.time
        yield from self._finding(
            policy,
            "accounts.failed-login-burst",
            "account.burst",
            f"外包账号 {account} 在 {int(window.total_seconds() // 60)} 分钟内登录失败 "
            f"{len(failures)} 次（{rec.host}）",
            self._burst_evidence(who, failures, window, followed=False),
            rec.time,
            suppress_key=account,
        )

    def _burst_evidence(
        self,
        who: Resolved,
        failures: Iterable[tuple[datetime, str]],
        window: timedelta,
        *,
        followed: bool,
    ) -> AccountBurstEvidence:
        items = list(failures)
        return AccountBurstEvidence(
            **self._who(who),
            failures=max(1, len(items)),
            window_s=int(window.total_seconds()),
            first_failure=items[0][0],
            last_failure=items[-1][0],
            followed_by_success=followed,
            remote_hosts=sorted({r for _, r in items if r})[:64],
        )

    def _burst_success(
        self, policy: AccountsPolicy, who: Resolved, at: datetime
    ) -> Iterator[Finding]:
        burst_at = self._burst_at.get(who.account)
        rule = policy.rule("accounts.failed-login-burst")
        window = timedelta(seconds=(rule.match.window_s if rule else None) or 300)
        if burst_at is None or not timedelta(0) <= at - burst_at <= window:
            return
        del self._burst_at[who.account]
        failures = self._failures.get(who.account) or deque([(burst_at, "")])
        yield from self._finding(
            policy,
            "accounts.burst-then-success",
            "account.burst",
            f"外包账号 {who.account} 在连续登录失败后登录成功，疑似口令猜测得手",
            self._burst_evidence(who, failures, window, followed=True),
            at,
        )

    # -- state and activity -------------------------------------------------------

    def _group_state(self, obs: GroupState, policy: AccountsPolicy) -> Iterator[Finding]:
        groups = frozenset(obs.groups)
        if obs.account in self._groups or len(self._groups) < MAX_TRACKED_ACCOUNTS:
            self._groups[obs.account] = groups
        who = self._resolve(policy, obs.account)
        if who is None:
            self._forbidden_held.pop(obs.account, None)
            return
        forbidden = groups & frozenset(policy.expand(who.role.forbidden_groups))
        if forbidden == self._forbidden_held.get(obs.account, frozenset()):
            return
        self._forbidden_held[obs.account] = forbidden
        if not forbidden:
            return
        evidence = AccountGroupEvidence(
            **self._who(who), forbidden=sorted(forbidden), groups=sorted(groups)
        )
        yield from self._finding(
            policy,
            "accounts.forbidden-group",
            "account.group",
            f"外包账号 {obs.account} 属于禁止的特权组 {', '.join(sorted(forbidden))}（{obs.host}）",
            evidence,
            obs.time,
            exception_values={"group": ",".join(sorted(forbidden))},
        )

    def _process(self, obs: ProcessStarted, policy: AccountsPolicy) -> Iterator[Finding]:
        who = self._resolve(policy, obs.account)
        if who is None:
            return
        names = {obs.name.lower(), posixpath.basename(obs.exe).lower()}
        argv0 = obs.cmdline.split(" ", 1)[0] if obs.cmdline else ""
        names.add(posixpath.basename(argv0).lower())
        names.discard("")
        matched = next(
            (
                pattern
                for pattern in policy.expand(who.role.forbidden_programs)
                for name in sorted(names)
                if fnmatch.fnmatchcase(name, pattern.lower())
            ),
            None,
        )
        if matched is None:
            return
        evidence = AccountProgramEvidence(
            **self._who(who),
            pid=obs.pid,
            name=obs.name,
            exe=obs.exe,
            cmdline=obs.cmdline,
            sha256=obs.sha256,
            matched=matched,
        )
        yield from self._finding(
            policy,
            "accounts.forbidden-program",
            "account.program",
            f"外包账号 {obs.account} 运行了禁止的程序 {obs.name}（{obs.exe or '路径未知'}，"
            f"进程 {obs.pid}，{obs.host}）",
            evidence,
            obs.time,
        )

    def _mount(self, obs: MountObserved, policy: AccountsPolicy) -> Iterator[Finding]:
        if obs.action != "mounted" or not obs.removable:
            return
        owners = self._live_contractors(policy)
        mounted_by = self._resolve(policy, obs.account)
        if mounted_by is not None and all(w.account != mounted_by.account for w in owners):
            owners.insert(0, mounted_by)
        if not owners:
            return
        device_id = f"{obs.vendor_id}:{obs.product_id}:{obs.serial}".lower()
        for who in owners:
            approved = any(
                fnmatch.fnmatchcase(device_id, pattern.lower())
                for pattern in policy.expand(who.role.approved_devices)
            )
            evidence = AccountRemovableEvidence(
                **self._who(who),
                device=obs.device,
                mountpoint=obs.mountpoint,
                vendor_id=obs.vendor_id,
                product_id=obs.product_id,
                serial=obs.serial,
                approved=approved,
                live_sessions=[w.account for w in owners][:64],
            )
            label = f"{obs.device}（{device_id}）挂载于 {obs.mountpoint}"
            yield from self._finding(
                policy,
                "accounts.removable-mount",
                "account.removable",
                f"外包账号 {who.account} 登录期间挂载了移动存储 {label}",
                evidence,
                obs.time,
            )
            if not approved:
                yield from self._finding(
                    policy,
                    "accounts.unapproved-device",
                    "account.removable",
                    f"外包账号 {who.account} 登录期间挂载了未经批准的移动存储 {label}",
                    evidence,
                    obs.time,
                )

    def _file(self, obs: FileTouched, policy: AccountsPolicy) -> Iterator[Finding]:
        known = self._resolve(policy, obs.account)
        if obs.account and known is None:
            return  # attributed to someone who is not a contractor
        if obs.purpose == "tamper":
            yield from self._tamper(
                AgentTampered(
                    time=obs.time,
                    host=obs.host,
                    what="agent_file_changed",
                    path=obs.path,
                    account=obs.account,
                ),
                policy,
            )
            return
        if obs.purpose == "persistence":
            if known is None:
                return
            evidence = AccountFileEvidence(
                **self._who(known), path=obs.path, action=obs.action, attribution=obs.attribution
            )
            yield from self._finding(
                policy,
                "accounts.persistence",
                "account.persistence",
                f"外包账号 {known.account} 设置了持久化项 {obs.path}（{obs.action}，{obs.host}）",
                evidence,
                obs.time,
            )
            return
        suspects = [known] if known is not None else self._live_contractors(policy)
        protecting = [
            who
            for who in suspects
            if any(_under(obs.path, root) for root in policy.expand(who.role.protected_paths))
        ]
        if not protecting:
            return
        first = protecting[0]
        who_fields = (
            self._who(first)
            if known is not None
            else {"role": first.role_name, "sponsor": first.sponsor}
        )
        evidence = AccountFileEvidence(
            **who_fields,
            path=obs.path,
            action=obs.action,
            attribution=obs.attribution,
            candidates=[w.account for w in protecting][:64],
        )
        actor = (
            f"外包账号 {known.account}"
            if known is not None
            else f"（平台无法确定操作账号，在线外包账号：{', '.join(evidence.candidates)}）"
        )
        yield from self._finding(
            policy,
            "accounts.protected-path",
            "account.file",
            f"受保护路径 {obs.path} 被访问（{obs.action}）{actor}",
            evidence,
            obs.time,
            suppress_key=f"{obs.path}:{obs.action}",
        )

    def _tamper(self, obs: AgentTampered, policy: AccountsPolicy) -> Iterator[Finding]:
        known = self._resolve(policy, obs.account)
        candidates = (
            [known.account] if known else [w.account for w in self._live_contractors(policy)]
        )
        fields = self._who(known) if known else {"account": obs.account}
        evidence = AccountTamperEvidence(
            **fields, what=obs.what, path=obs.path, candidates=candidates[:64]
        )
        label = {
            "log_truncated": "日志被清空或截断",
            "history_cleared": "命令历史被清除",
            "agent_stopped": "代理服务被停止",
            "agent_file_changed": "代理文件被改动",
        }[obs.what]
        who = (
            f"，账号 {obs.account}"
            if obs.account
            else (f"，在线外包账号：{', '.join(candidates)}" if candidates else "")
        )
        yield from self._finding(
            policy,
            "accounts.tamper",
            "account.tamper",
            f"痕迹篡改：{label}{'（' + obs.path + '）' if obs.path else ''}{who}（{obs.host}）",
            evidence,
            obs.time,
        )


def _session_key(rec: AuthRecord) -> str:
    """PAM's open and close lines share the pid; logind's name its session."""
    if rec.program == "systemd-logind":
        return f"logind:{rec.command}"
    return f"{rec.program}[{rec.pid}]"


def _under(path: str, root: str) -> bool:
    path, root = posixpath.normpath(path), posixpath.normpath(root)
    return path == root or path.startswith(root.rstrip("/") + "/")


def _password_target(command: str) -> str | None:
    """The user whose password a sudo command changes (``passwd bob``, ``chpasswd``: unknown)."""
    try:
        argv = shlex.split(command)
    except ValueError:
        argv = command.split()
    if not argv or posixpath.basename(argv[0]) not in PASSWORD_TOOLS:
        return None
    tool = posixpath.basename(argv[0])
    if tool == "chpasswd":
        return "(chpasswd 批量)"
    if tool == "usermod" and not any(a in ("-p", "--password") for a in argv):
        return None
    operands = [a for a in argv[1:] if not a.startswith("-")]
    return operands[-1] if operands else None


__all__ = ["AccountsDetector", "Role"]
