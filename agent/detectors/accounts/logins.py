"""Login rules: hours, holidays, hosts, contract, disabled accounts, sessions, bursts."""

from __future__ import annotations

import fnmatch
from collections import deque
from collections.abc import Iterable, Iterator
from datetime import date, datetime, time, timedelta

from agent.calendar_cn import DayKind, local_time
from agent.detectors.accounts.evidence import (
    AccountBurstEvidence,
    AccountLoginEvidence,
    AccountSessionEvidence,
)
from agent.detectors.accounts.observations import (
    AuthRecord,
    SessionObserved,
)
from agent.detectors.accounts.policy import AccountsPolicy, Hours, Resolved
from agent.detectors.accounts.state import MAX_FAILURES_KEPT, MAX_TRACKED_ACCOUNTS, DetectorState
from agent.events import Finding


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


class LoginRules(DetectorState):
    """Judges sessions and logins against the role's bounds; counts failed logins."""

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
