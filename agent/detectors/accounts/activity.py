"""Activity rules: privilege, account changes, groups, programs, removable storage, files."""

from __future__ import annotations

import fnmatch
import posixpath
import shlex
from collections.abc import Iterator

from agent.detectors.accounts.evidence import (
    AccountChangeEvidence,
    AccountFileEvidence,
    AccountGroupEvidence,
    AccountPrivilegeEvidence,
    AccountProgramEvidence,
    AccountRemovableEvidence,
    AccountTamperEvidence,
)
from agent.detectors.accounts.observations import (
    AgentTampered,
    AuthRecord,
    FileTouched,
    GroupState,
    MountObserved,
    ProcessStarted,
)
from agent.detectors.accounts.policy import AccountsPolicy
from agent.detectors.accounts.state import (
    MAX_TRACKED_ACCOUNTS,
    PASSWORD_TOOLS,
    PRIVILEGE_TOOLS,
    DetectorState,
)
from agent.events import Finding


class ActivityRules(DetectorState):
    """Judges what a contractor does once logged in, and traces tampered with."""

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
            # the mount table and udisksd's line report one mount: one finding
            once = f"{who.account}:{obs.device}:{obs.mountpoint}"
            yield from self._finding(
                policy,
                "accounts.removable-mount",
                "account.removable",
                f"外包账号 {who.account} 登录期间挂载了移动存储 {label}",
                evidence,
                obs.time,
                suppress_key=once,
            )
            if not approved and obs.source != "udisks":  # udisksd does not say which device
                yield from self._finding(
                    policy,
                    "accounts.unapproved-device",
                    "account.removable",
                    f"外包账号 {who.account} 登录期间挂载了未经批准的移动存储 {label}",
                    evidence,
                    obs.time,
                    suppress_key=once,
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
