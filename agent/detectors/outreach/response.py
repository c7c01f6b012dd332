"""Carries out the responses: installs the kernel filter's plan, takes links down and back up.

What to do is decided elsewhere (``readers.kernel_filter.plan_for`` for the
table, ``response_plan.link_steps`` for links); this module runs ``nft``,
``nmcli`` and rtnetlink in threads, reports each change as an
``ActionObservation`` and keeps the links it took down in a state file, so
a restarted agent can give them back when the policy stops asking.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import structlog

from agent.detectors.outreach.observations import ActionObservation
from agent.detectors.outreach.policy import IPAddress, NetworksPolicy
from agent.detectors.outreach.readers import kernel_filter
from agent.detectors.outreach.readers.netlink import RtnlClient
from agent.detectors.outreach.response_plan import DRY_RUN, PROTECTED_DETAIL, LinkStep

log = structlog.get_logger("courtguard.outreach")

STATE_FILE: Final = "outreach-state.json"
DESTINATIONS_TARGET: Final = "内网名单以外的目的地址"


class Responder:
    """The table and the links as the policy wants them; ``put`` receives the action reports."""

    def __init__(self, data_dir: Path, put: Callable[[Any], None]) -> None:
        self.data_dir = data_dir
        self._put = put
        self.plan: kernel_filter.FilterPlan | None = None
        #: Interface name -> the rule that took it down, or ``DRY_RUN``.
        self.downed: dict[str, str] = {}
        #: What the table enforces for destinations: off, dry-run or enforced.
        self._destinations_state = "off"
        self._inherited_interfaces: tuple[str, ...] = ()
        self._filter_lock = asyncio.Lock()

    async def adopt_table(self) -> None:
        """A table left by an earlier run still enforcing is what a new policy may undo."""
        enforced, interfaces = await asyncio.to_thread(kernel_filter.enforcement)
        self._destinations_state = "enforced" if enforced else "off"
        self._inherited_interfaces = interfaces

    async def apply_filter(
        self,
        policy: NetworksPolicy,
        collector: tuple[IPAddress, ...],
        blocked_interfaces: Sequence[str],
    ) -> None:
        """Install the table the policy asks for, unless it is the one installed."""
        async with self._filter_lock:
            plan = kernel_filter.plan_for(
                policy,
                collector,
                dry_run_blocks=policy.settings.dry_run,
                blocked_interfaces=list(blocked_interfaces),
            )
            if plan == self.plan:
                return
            try:
                unheld = await asyncio.to_thread(kernel_filter.install, plan)
            except (kernel_filter.FilterError, OSError, subprocess.SubprocessError) as exc:
                log.error("outreach: kernel filter not installed", error=str(exc))
                self._put(
                    ActionObservation(
                        action="block",
                        rule_id="outreach.flow-outside",
                        target="inet courtguard",
                        ok=False,
                        detail=str(exc)[:500],
                    )
                )
                return
            if unheld:
                log.warning("outreach: first packets are not held, only logged", error=unheld)
            previous, self.plan = self.plan, plan
            log.info(
                "outreach: kernel filter installed",
                block=plan.block_destinations,
                blocked_interfaces=list(plan.blocked_interfaces),
            )
            self._report_block_changes(policy, previous, plan)

    def _report_block_changes(
        self,
        policy: NetworksPolicy,
        previous: kernel_filter.FilterPlan | None,
        plan: kernel_filter.FilterPlan,
    ) -> None:
        """One action event per change of what the table enforces (or would, in dry-run)."""
        rules = [r for r in policy.responses("block") if r.match.signal in {"flow", "dns"}]
        rule_id = rules[0].id if rules else "outreach.flow-outside"
        state = "enforced" if plan.block_destinations else "dry-run" if rules else "off"
        if state != self._destinations_state:
            if self._destinations_state == "enforced":
                self._put(
                    ActionObservation(action="unblock", rule_id=rule_id, target=DESTINATIONS_TARGET)
                )
            if state != "off":
                self._put(
                    ActionObservation(
                        action="block",
                        rule_id=rule_id,
                        target=DESTINATIONS_TARGET,
                        dry_run=state == "dry-run",
                    )
                )
            self._destinations_state = state
        before = set(previous.blocked_interfaces) if previous else set(self._inherited_interfaces)
        interface_rule = _interface_rule(policy, "block")
        for name in sorted(set(plan.blocked_interfaces) - before):
            self._put(ActionObservation(action="block", rule_id=interface_rule, target=name))
        for name in sorted(before - set(plan.blocked_interfaces)):
            self._put(ActionObservation(action="unblock", rule_id=interface_rule, target=name))

    async def apply_links(self, steps: Sequence[LinkStep], indexes: Mapping[str, int]) -> None:
        """Carry out ``response_plan.link_steps``; ``indexes`` maps present links to their index."""
        for step in steps:
            report: dict[str, Any]
            if step.action == "forget":
                self.downed.pop(step.name, None)
                continue
            if step.action == "refuse":
                report = {"ok": False, "detail": PROTECTED_DETAIL}
            elif step.action == "dry-run":
                self.downed[step.name] = DRY_RUN
                report = {"dry_run": True}
            else:
                up = step.action == "up"
                if up:
                    self.downed.pop(step.name, None)
                index = indexes.get(step.name)
                ok, detail = await asyncio.to_thread(set_link, index, step.name, up)
                if not up:
                    self.downed[step.name] = step.rule_id
                report = {"ok": ok, "detail": detail}
            self._put(
                ActionObservation(
                    action="link-up" if step.action == "up" else "link-down",
                    rule_id=step.rule_id,
                    target=step.name,
                    **report,
                )
            )
        self.save_state()

    async def stop(self) -> None:
        """Remove the table unless it enforces something: enforcement outlives the agent."""
        if self.plan is None:
            return
        keep = self.plan.block_destinations or bool(self.plan.blocked_interfaces)
        with contextlib.suppress(kernel_filter.FilterError, OSError, subprocess.SubprocessError):
            if not keep:
                await asyncio.to_thread(kernel_filter.remove)

    def load_state(self) -> None:
        with contextlib.suppress(OSError, ValueError, TypeError):
            state = json.loads((self.data_dir / STATE_FILE).read_text())
            self.downed = {str(k): str(v) for k, v in state.get("downed", {}).items()}

    def save_state(self) -> None:
        with contextlib.suppress(OSError):
            path = self.data_dir / STATE_FILE
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"downed": self.downed, "saved_at": time.time()}))
            tmp.replace(path)


def _interface_rule(policy: NetworksPolicy, response: str) -> str:
    rule = next((r for r in policy.responses(response) if r.match.signal == "interface"), None)
    return rule.id if rule is not None else "outreach.interface-unapproved"


def set_link(index: int | None, name: str, up: bool) -> tuple[bool, str]:
    """Tell NetworkManager to leave the link alone (or take it back), then set it down or up."""
    nmcli = shutil.which("nmcli")
    notes = []
    if nmcli is not None:
        result = subprocess.run(  # noqa: S603 (fixed binary and arguments)
            [nmcli, "device", "set", name, "managed", "yes" if up else "no"],
            capture_output=True,
            text=True,
            timeout=15,
        )
        notes.append(
            "NetworkManager "
            + ("接管" if up else "不再管理")
            + ("" if result.returncode == 0 else "失败")
        )
    if index is None:
        return (up, "接口已不存在")
    client = RtnlClient()
    try:
        client.set_link_up(index, up)
    except OSError as exc:
        return False, f"{exc.strerror or exc}"
    finally:
        client.close()
    return True, "；".join(notes)
