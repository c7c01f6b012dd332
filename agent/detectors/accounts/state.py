"""State and helpers shared by the accounts detector's rule groups (see ``detector``)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, Final

from agent.calendar_cn import local_time
from agent.detectors.accounts.policy import AccountsPolicy, Resolved
from agent.events import Evidence, Finding

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


class DetectorState:
    """The detector's bounded memory, and how it resolves accounts and makes findings."""

    def __init__(self) -> None:
        self._groups: dict[str, frozenset[str]] = {}
        self._forbidden_held: dict[str, frozenset[str]] = {}
        self._live: dict[str, set[str]] = {}
        self._failures: dict[str, deque[tuple[datetime, str]]] = {}
        self._burst_at: dict[str, datetime] = {}
        self._last_fired: dict[tuple[str, str, str], datetime] = {}

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
