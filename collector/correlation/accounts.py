"""Contractor accounts across hosts: shared accounts, first sightings, a daily score.

Fed the ``account.*`` events agents sent (as ``StoredAccountEvent``), in
time order; pure, like an agent detector, so the rules' cases run through it.

* ``accounts.shared-account``: one account with live sessions on two or more
  hosts at once for at least ``min_overlap_s`` (from ``account.session``
  open/close records; a session never closed counts as live for at most
  ``SESSION_MAX_AGE``);
* ``accounts.first-seen-host``: the first session of an account on a host;
  ``accounts.first-sudo``: the first sudo/su/pkexec (used or attempted) of an
  account on a host. Both low: they feed the score;
* ``accounts.daily-score``: per account and Asia/Shanghai day, the sum of the
  rule's ``weights`` over the account's findings that day; fires once when it
  reaches ``score_threshold``.

Every finding carries a ``dedup_key``-derived identity (see
``collector.correlation.account_pass``) so the same conclusion reached by another
collector process, or by the next pass, is stored once.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any, ClassVar, Final

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from agent.calendar_cn import local_time
from agent.detectors.accounts.evidence import (
    AccountFirstSeenEvidence,
    AccountScoreEvidence,
    AccountSharedEvidence,
)
from agent.events import Finding
from agent.policy.models import PolicyDocument

SESSION_MAX_AGE: Final = timedelta(hours=12)
#: Kinds the pass reads; the correlator's own ``account.shared``/``account.daily_score`` are not.
INPUT_KINDS: Final = (
    "account.session",
    "account.login",
    "account.privilege",
    "account.removable",
    "account.file",
    "account.first_seen",
)
DEFAULT_WEIGHTS: Final = {
    "accounts.login-outside-hours": 2,
    "accounts.login-on-holiday": 2,
    "accounts.login-unassigned-host": 3,
    "accounts.removable-mount": 2,
    "accounts.unapproved-device": 3,
    "accounts.protected-path": 2,
    "accounts.first-seen-host": 1,
    "accounts.first-sudo": 1,
}
_Name = Annotated[str, StringConstraints(max_length=256)]


class StoredAccountEvent(BaseModel):
    """The parts of a stored ``account.*`` event the correlator reads."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    host: Annotated[str, StringConstraints(min_length=1, max_length=253)]
    kind: _Name
    rule_id: _Name | None = None
    time: AwareDatetime
    evidence: dict[str, Any] = Field(default_factory=dict)

    @property
    def account(self) -> str | None:
        value = self.evidence.get("account")
        return value if isinstance(value, str) and value else None


def dedup_key(finding: Finding) -> str:
    """What makes two findings the same conclusion (for a deterministic event id)."""
    evidence = finding.evidence
    parts: list[Any] = [finding.rule_id, evidence.get("account")]
    if finding.kind == "account.shared":
        parts += [evidence.get("hosts"), evidence.get("since")]
    elif finding.kind == "account.first_seen":
        parts += [evidence.get("host"), evidence.get("what")]
    elif finding.kind == "account.daily_score":
        parts += [evidence.get("day")]
    return "|".join(str(p) for p in parts)


class AccountsCorrelator:
    """See the module docstring."""

    name: ClassVar[str] = "accounts_correlator"
    policy_section: ClassVar[str] = "accounts"
    description: ClassVar[str] = (
        "Correlates contractor account events across hosts: shared accounts, first sightings "
        "and a per-account daily score."
    )
    #: The kinds only this correlator may store; ingest refuses them from agents.
    kinds: ClassVar[frozenset[str]] = frozenset(
        {"account.shared", "account.first_seen", "account.daily_score"}
    )

    def __init__(self) -> None:
        self.live: dict[str, dict[tuple[str, str], datetime]] = {}
        self.reported_shared: set[tuple[str, tuple[str, ...]]] = set()
        self.seen_login: set[tuple[str, str]] = set()
        self.seen_privilege: set[tuple[str, str]] = set()
        self.scores: dict[tuple[str, str], dict[str, int]] = {}
        self.score_hosts: dict[tuple[str, str], set[str]] = {}
        self.scored: set[str] = set()
        self.reported_score: set[tuple[str, str]] = set()
        self.who: dict[str, dict[str, Any]] = {}

    def evaluate(
        self, observation: StoredAccountEvent, policy: PolicyDocument, now: datetime
    ) -> list[Finding]:
        account = observation.account
        if account is None:
            return []
        self.who[account] = {
            k: observation.evidence[k] for k in ("role", "sponsor") if k in observation.evidence
        }
        findings: list[Finding] = []
        if observation.kind == "account.session":
            findings += self._session(observation, account, policy)
        elif observation.kind == "account.privilege":
            findings += self._first(observation, account, "privilege", policy)
        findings += self._score(observation, account, observation.rule_id, policy)
        return findings

    def finalize(self, policy: PolicyDocument, now: datetime) -> list[Finding]:
        return self._shared(policy, now)

    # -- sessions ---------------------------------------------------------------

    def _session(
        self, event: StoredAccountEvent, account: str, policy: PolicyDocument
    ) -> list[Finding]:
        action = event.evidence.get("action")
        key = (event.host, str(event.evidence.get("session_id", "")))
        sessions = self.live.setdefault(account, {})
        if action == "close":
            sessions.pop(key, None)
            return []
        sessions.setdefault(key, event.time)
        findings = self._first(event, account, "login", policy)
        findings += self._shared(policy, event.time)
        return findings

    def _shared(self, policy: PolicyDocument, now: datetime) -> list[Finding]:
        rule = policy.rule("accounts.shared-account")
        if rule is None:
            return []
        needed = timedelta(seconds=rule.match.min_overlap_s or 300)
        findings: list[Finding] = []
        for account, sessions in self.live.items():
            for key, started in list(sessions.items()):
                if now - started > SESSION_MAX_AGE:
                    del sessions[key]
            earliest: dict[str, datetime] = {}
            for (host, _), started in sessions.items():
                if host not in earliest or started < earliest[host]:
                    earliest[host] = started
            if len(earliest) < 2:
                continue
            since = max(earliest.values())
            hosts = tuple(sorted(earliest))
            if now - since < needed or (account, hosts) in self.reported_shared:
                continue
            self.reported_shared.add((account, hosts))
            evidence = AccountSharedEvidence(
                account=account,
                **self.who.get(account, {}),
                hosts=list(hosts)[:64],
                overlap_s=(now - since).total_seconds(),
                since=since,
            )
            findings.append(
                Finding(
                    kind="account.shared",
                    severity=rule.severity,
                    rule_id=rule.id,
                    summary=(
                        f"外包账号 {account} 同时在 {len(hosts)} 台主机上登录超过 "
                        f"{int(needed.total_seconds() // 60)} 分钟（{', '.join(hosts)}），"
                        "疑似账号共用"
                    )[:500],
                    evidence=evidence.model_dump(mode="json", exclude_none=True),
                    time=now,
                )
            )
        return findings

    # -- first sightings ----------------------------------------------------------

    def _first(
        self, event: StoredAccountEvent, account: str, what: str, policy: PolicyDocument
    ) -> list[Finding]:
        seen = self.seen_login if what == "login" else self.seen_privilege
        if (account, event.host) in seen:
            return []
        seen.add((account, event.host))
        rule_id = "accounts.first-seen-host" if what == "login" else "accounts.first-sudo"
        rule = policy.rule(rule_id)
        if rule is None:
            return []
        evidence = AccountFirstSeenEvidence(
            account=account,
            **self.who.get(account, {}),
            host=event.host,
            what=what,
            source_event=event.id,
        )
        label = (
            "首次在该主机登录"
            if what == "login"
            else "首次在该主机使用或尝试提权（sudo/su/pkexec）"
        )
        finding = Finding(
            kind="account.first_seen",
            severity=rule.severity,
            rule_id=rule.id,
            summary=f"外包账号 {account} {label}：{event.host}",
            evidence=evidence.model_dump(mode="json", exclude_none=True),
            time=event.time,
        )
        return [
            finding,
            *self._score(
                StoredAccountEvent(
                    id=event.id,
                    host=event.host,
                    kind=finding.kind,
                    rule_id=rule.id,
                    time=event.time,
                    evidence=finding.evidence,
                ),
                account,
                rule.id,
                policy,
            ),
        ]

    # -- the daily score ----------------------------------------------------------

    def _score(
        self,
        event: StoredAccountEvent,
        account: str,
        rule_id: str | None,
        policy: PolicyDocument,
    ) -> list[Finding]:
        rule = policy.rule("accounts.daily-score")
        if rule is None or rule_id is None:
            return []
        weights = rule.match.weights or DEFAULT_WEIGHTS
        weight = weights.get(rule_id, 0)
        # a stored first-seen event and the session it was made from are one contribution
        marker = f"{event.evidence.get('source_event', event.id)}|{rule_id}"
        if weight <= 0 or marker in self.scored:
            return []
        self.scored.add(marker)
        day = local_time(event.time).date().isoformat()
        contributions = self.scores.setdefault((account, day), {})
        contributions[rule_id] = contributions.get(rule_id, 0) + weight
        hosts = self.score_hosts.setdefault((account, day), set())
        hosts.add(event.host)
        score = sum(contributions.values())
        threshold = rule.match.score_threshold or 5
        if score < threshold or (account, day) in self.reported_score:
            return []
        self.reported_score.add((account, day))
        evidence = AccountScoreEvidence(
            account=account,
            **self.who.get(account, {}),
            day=day,
            score=score,
            contributions=dict(sorted(contributions.items())),
            hosts=sorted(hosts)[:64],
        )
        parts = "、".join(
            f"{k.removeprefix('accounts.')}×{v}" for k, v in sorted(contributions.items())
        )
        return [
            Finding(
                kind="account.daily_score",
                severity=rule.severity,
                rule_id=rule.id,
                summary=(
                    f"外包账号 {account} 在 {day} 的异常行为累计 {score} 分（阈值 {threshold}）："
                    f"{parts}"
                )[:500],
                evidence=evidence.model_dump(mode="json", exclude_none=True),
                time=event.time,
            )
        ]
