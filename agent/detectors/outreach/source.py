"""The outreach source: netlink events, the kernel filter's NFLOG, probes, host settings, responses.

Start-up, in order:

1. collector addresses from the credentials (never blocked, never reported);
2. rtnetlink subscription, then a full dump of links and addresses (again
   after every ENOBUFS), each difference from what we knew becomes an
   observation;
3. the kernel filter (``inet courtguard``) built from the policy, and the
   NFLOG group bound (needs CAP_NET_ADMIN; without it flows are not seen and
   no response runs, the rest works);
4. timers: route queries for the canaries and probes run after any
   link/address/route change (debounced) and every ``probe.interval_s``;
   host settings (proxy files, forwarding, NAT, hotspot) every
   ``HOST_SETTINGS_EVERY_S`` and on netconf changes.

Responses (block, link-down) are decided with the detector's own pure
verdicts, carried out here, and reported as ``ActionObservation``; they are
undone when the policy stops asking for them. Nothing blocks the event loop
except short /proc and sysfs reads; nft and nmcli run in threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import json
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import structlog

from agent.detector import SourceContext, SourceUnavailable
from agent.detectors.outreach import host_settings, kernel_filter, probe
from agent.detectors.outreach import judgement as j
from agent.detectors.outreach.attribution import Attributor
from agent.detectors.outreach.interfaces import link_facts
from agent.detectors.outreach.netlink import (
    AddressMessage,
    LinkMessage,
    NflogGroup,
    OtherMessage,
    RtnlClient,
    RtnlSubscription,
    RulesetSubscription,
)
from agent.detectors.outreach.observations import (
    ActionObservation,
    AddressObservation,
    CounterObservation,
    DnsAnswerObservation,
    FlowObservation,
    LinkFacts,
    LinkObservation,
    ProbeObservation,
    RouteObservation,
)
from agent.detectors.outreach.packets import parse_dns, parse_ip
from agent.detectors.outreach.policy import IPAddress, NetworksPolicy

log = structlog.get_logger("courtguard.outreach")

HOST_SETTINGS_EVERY_S: Final = 30.0
CHANGE_DEBOUNCE_S: Final = 0.3
PROBE_DEBOUNCE_S: Final = 1.0
QUEUE_MAX: Final = 20_000
STATE_FILE: Final = "outreach-state.json"


def collector_addresses(data_dir: Path) -> tuple[IPAddress, ...]:
    """The collector's IP addresses from the enrolled credentials (resolved once)."""
    try:
        url = json.loads((data_dir / "credentials.json").read_text())["collector_url"]
        host = urlsplit(url).hostname or ""
    except (OSError, ValueError, KeyError, TypeError):
        return ()
    address = j.parse_ip(host)
    if address is not None:
        return (address,)
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return ()
    return tuple({ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos})


class OutreachSource:
    """Yields outreach observations until cancelled; see the module docstring."""

    def __init__(self, context: SourceContext) -> None:
        if not isinstance(context.policy, NetworksPolicy):
            raise SourceUnavailable("no networks policy loaded")
        self.policy: NetworksPolicy = context.policy
        self.data_dir = Path(getattr(context.settings, "data_dir", "/var/lib/courtguard"))
        self.host = str(getattr(context.settings, "hostname", socket.gethostname()))
        self.admin = "CAP_NET_ADMIN" in context.capabilities
        self.queue: asyncio.Queue[Any] = asyncio.Queue(QUEUE_MAX)
        self.links: dict[int, LinkMessage] = {}
        self.facts: dict[int, LinkFacts] = {}
        self.addresses: set[tuple[int, str, int]] = set()
        self.routes: dict[str, tuple[Any, ...]] = {}
        self.collector: tuple[IPAddress, ...] = ()
        self.attributor = Attributor()
        self.nflog: NflogGroup | None = None
        self.rulesets: RulesetSubscription | None = None
        self._sharing_handle: asyncio.TimerHandle | None = None
        self.rtnl: RtnlSubscription | None = None
        self.client: RtnlClient | None = None
        self.plan: kernel_filter.FilterPlan | None = None
        self.downed: dict[str, str] = {}
        self.dropped = 0
        self._reported_lost = 0
        self._proxy_signature: tuple[Any, ...] | None = None
        self._proxies_seen: set[tuple[str, str, str]] = set()
        self._sharing: Any = None
        self._change_handle: asyncio.TimerHandle | None = None
        self._probe_handle: asyncio.TimerHandle | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        #: What the table enforces for destinations: off, dry-run or enforced.
        self._destinations_state = "off"
        self._inherited_interfaces: tuple[str, ...] = ()
        self._filter_lock = asyncio.Lock()

    # -- lifecycle ---------------------------------------------------------------

    async def observations(self) -> AsyncIterator[Any]:
        loop = asyncio.get_running_loop()
        self.collector = await asyncio.to_thread(collector_addresses, self.data_dir)
        try:
            self.rtnl = RtnlSubscription()
            self.client = RtnlClient()
        except OSError as exc:
            raise SourceUnavailable(f"rtnetlink unavailable: {exc}") from exc
        self._load_state()
        try:
            loop.add_reader(self.rtnl.fileno(), self._on_rtnl)
            if self.admin:
                # NAT rules (sharing) appear through nftables, not rtnetlink.
                with contextlib.suppress(OSError):
                    self.rulesets = RulesetSubscription()
                    loop.add_reader(self.rulesets.fileno(), self._on_ruleset)
            self._resync()
            if self.admin:
                await self._start_filter()
            else:
                log.warning(
                    "outreach: no CAP_NET_ADMIN; flows are not watched and no response runs"
                )
            self._tasks.extend(
                [
                    asyncio.create_task(self._every_probe(), name="outreach-probe"),
                    asyncio.create_task(self._every_host_settings(), name="outreach-host"),
                    asyncio.create_task(self._every_accounting(), name="outreach-lost"),
                ]
            )
            self._schedule_change()
            while True:
                yield await self.queue.get()
        finally:
            await self._stop(loop)

    async def _stop(self, loop: asyncio.AbstractEventLoop) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for handle in (self._change_handle, self._probe_handle, self._sharing_handle):
            if handle is not None:
                handle.cancel()
        for sock in (self.rtnl, self.nflog, self.rulesets):
            if sock is not None:
                with contextlib.suppress(ValueError, OSError):
                    loop.remove_reader(sock.fileno())
                sock.close()
        if self.client is not None:
            self.client.close()
        if self.admin and self.plan is not None:
            # Enforcement outlives the agent (fail closed); watching does not.
            keep = self.plan.block_destinations or bool(self.plan.blocked_interfaces)
            with contextlib.suppress(
                kernel_filter.FilterError, OSError, subprocess.SubprocessError
            ):
                if not keep:
                    await asyncio.to_thread(kernel_filter.remove)

    def update_policy(self, section: Any) -> None:
        """A new policy: rebuild the filter, redo responses, probe and route checks at once."""
        if not isinstance(section, NetworksPolicy):
            return
        self.policy = section
        if self.admin:
            self._spawn(self._start_filter())
        self._schedule_change()

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run ``work`` as a task the source cancels when it stops (finished ones are dropped)."""
        self._tasks = [t for t in self._tasks if not t.done()]
        self._tasks.append(asyncio.create_task(work))

    def _put(self, observation: Any) -> None:
        try:
            self.queue.put_nowait(observation)
        except asyncio.QueueFull:
            self.dropped += 1

    # -- netlink: links, addresses, routes ----------------------------------------

    def _on_rtnl(self) -> None:
        assert self.rtnl is not None  # noqa: S101 (reader registered after it is set)
        try:
            messages = self.rtnl.read()
        except OSError as exc:
            if exc.errno != errno.ENOBUFS:
                raise
            log.warning("outreach: rtnetlink overrun; resynchronising with a full dump")
            self._resync()
            return
        changed = False
        for message in messages:
            if isinstance(message, LinkMessage):
                changed |= self._on_link(message)
            elif isinstance(message, AddressMessage):
                changed |= self._on_address(message)
            elif isinstance(message, OtherMessage):
                changed = True
                if message.kind in (80, 81):  # netconf: forwarding may have changed
                    self._spawn(self._check_sharing())
        if changed:
            self._schedule_change()

    def _on_ruleset(self) -> None:
        """The ruleset changed (ours included): look at sharing again once it settles."""
        assert self.rulesets is not None  # noqa: S101 (reader registered after it is set)
        self.rulesets.drain()
        if self._sharing_handle is not None:
            self._sharing_handle.cancel()
        self._sharing_handle = asyncio.get_running_loop().call_later(
            CHANGE_DEBOUNCE_S,
            lambda: self._spawn(self._check_sharing()),
        )

    def _resync(self) -> None:
        """Full dump: every difference from what we knew becomes an observation."""
        assert self.client is not None  # noqa: S101
        links = {m.index: m for m in self.client.links()}
        for index in list(self.links):
            if index not in links:
                self._on_link(
                    LinkMessage(index, self.links[index].name, 0, 0, "", "", False, removed=True)
                )
        for message in links.values():
            self._on_link(message)
        current = {(a.index, a.address, a.prefixlen): a for a in self.client.addresses()}
        for key in list(self.addresses):
            if key not in current:
                self.addresses.discard(key)
        for address in current.values():
            self._on_address(address)
        self._schedule_change()

    def _on_link(self, message: LinkMessage) -> bool:
        known = self.links.get(message.index)
        if message.removed:
            if known is None:
                return False
            del self.links[message.index]
            facts = self.facts.pop(message.index, None) or LinkFacts(name=known.name)
            self.addresses = {a for a in self.addresses if a[0] != message.index}
            self._put(LinkObservation(link=facts, change="removed"))
            return True
        same = known is not None and (known.name, known.up, known.carrier, known.mac) == (
            message.name,
            message.up,
            message.carrier,
            message.mac,
        )
        self.links[message.index] = message
        if same:
            return False
        if known is None or known.name != message.name or known.mac != message.mac:
            self.facts[message.index] = link_facts(message)
        self._put(
            LinkObservation(
                link=self.facts[message.index],
                change="new" if known is None else "changed",
                up=message.up,
                carrier=message.carrier,
            )
        )
        return True

    def _on_address(self, message: AddressMessage) -> bool:
        key = (message.index, message.address, message.prefixlen)
        if not message.address:
            return False
        if message.removed:
            if key not in self.addresses:
                return False
            self.addresses.discard(key)
        elif key in self.addresses:
            return False
        else:
            self.addresses.add(key)
        link = self.facts.get(message.index) or LinkFacts(
            name=f"if{message.index}", index=message.index
        )
        self._put(
            AddressObservation(
                link=link,
                address=message.address,
                prefixlen=message.prefixlen,
                removed=message.removed,
            )
        )
        return True

    def _schedule_change(self) -> None:
        """After a burst of changes settles: routes, responses, filter, then a probe."""
        loop = asyncio.get_running_loop()
        if self._change_handle is not None:
            self._change_handle.cancel()
        self._change_handle = loop.call_later(CHANGE_DEBOUNCE_S, self._after_change)
        if self._probe_handle is not None:
            self._probe_handle.cancel()
        self._probe_handle = loop.call_later(
            PROBE_DEBOUNCE_S, lambda: self._spawn(self._probe_all())
        )

    def _after_change(self) -> None:
        self._check_routes()
        self._spawn(self._respond())

    def _check_routes(self) -> None:
        assert self.client is not None  # noqa: S101
        for canary in self.policy.canary_addresses:
            try:
                answer = self.client.route_to(str(canary))
            except OSError as exc:
                log.warning("outreach: route query failed", canary=str(canary), error=str(exc))
                continue
            state = (answer.reachable, answer.oif, answer.gateway, answer.source)
            if self.routes.get(str(canary)) == state:
                continue
            self.routes[str(canary)] = state
            link = self.facts.get(answer.oif) if answer.reachable else None
            self._put(
                RouteObservation(
                    canary=str(canary),
                    reachable=answer.reachable and link is not None,
                    link=link,
                    gateway=answer.gateway,
                    source=answer.source,
                )
            )

    # -- flows from the kernel filter ---------------------------------------------

    async def _start_filter(self) -> None:
        loop = asyncio.get_running_loop()
        if self.nflog is None:
            try:
                self.nflog = NflogGroup(self.policy.settings.nflog_group)
            except OSError as exc:
                log.warning("outreach: cannot bind NFLOG; flows are not watched", error=str(exc))
                return
            loop.add_reader(self.nflog.fileno(), self._on_nflog)
            # A table left by an earlier run still enforcing is what a new policy may undo.
            enforced, interfaces = await asyncio.to_thread(kernel_filter.enforcement)
            self._destinations_state = "enforced" if enforced else "off"
            self._inherited_interfaces = interfaces
        await self._rebuild_filter()

    async def _rebuild_filter(self) -> None:
        async with self._filter_lock:
            plan = kernel_filter.plan_for(
                self.policy,
                self.collector,
                dry_run_blocks=self.policy.settings.dry_run,
                blocked_interfaces=self._interfaces_to_block(),
            )
            if plan == self.plan:
                return
            try:
                await asyncio.to_thread(kernel_filter.apply, kernel_filter.ruleset(plan))
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
            previous, self.plan = self.plan, plan
            log.info(
                "outreach: kernel filter installed",
                block=plan.block_destinations,
                blocked_interfaces=list(plan.blocked_interfaces),
            )
            self._report_block_changes(previous, plan)

    def _report_block_changes(
        self, previous: kernel_filter.FilterPlan | None, plan: kernel_filter.FilterPlan
    ) -> None:
        """One action event per change of what the table enforces (or would, in dry-run)."""
        rules = [r for r in self.policy.responses("block") if r.match.signal in {"flow", "dns"}]
        rule_id = rules[0].id if rules else "outreach.flow-outside"
        target = "内网名单以外的目的地址"
        state = "enforced" if plan.block_destinations else "dry-run" if rules else "off"
        if state != self._destinations_state:
            if self._destinations_state == "enforced":
                self._put(ActionObservation(action="unblock", rule_id=rule_id, target=target))
            if state != "off":
                self._put(
                    ActionObservation(
                        action="block", rule_id=rule_id, target=target, dry_run=state == "dry-run"
                    )
                )
            self._destinations_state = state
        before = set(previous.blocked_interfaces) if previous else set(self._inherited_interfaces)
        for name in sorted(set(plan.blocked_interfaces) - before):
            self._put(
                ActionObservation(
                    action="block", rule_id=self._interface_rule("block"), target=name
                )
            )
        for name in sorted(before - set(plan.blocked_interfaces)):
            self._put(
                ActionObservation(
                    action="unblock", rule_id=self._interface_rule("block"), target=name
                )
            )

    def _interface_rule(self, response: str) -> str:
        rule = next(
            (r for r in self.policy.responses(response) if r.match.signal == "interface"), None
        )
        return rule.id if rule is not None else "outreach.interface-unapproved"

    def _on_nflog(self) -> None:
        assert self.nflog is not None  # noqa: S101
        for packet in self.nflog.read():
            header = parse_ip(packet.payload)
            if header is None:
                continue
            if packet.prefix == kernel_filter.PREFIX_DNS_ANSWER:
                self._on_dns_answer(header.source, header.payload)
                continue
            hook = "forward" if packet.prefix == kernel_filter.PREFIX_FWD else "output"
            process, note = None, ""
            if hook == "output":
                process, note = self.attributor.owner(
                    header.protocol, header.source_port, ipv6=":" in header.source
                )
            else:
                note = "forwarded for another device; no local process"
            query = ""
            if header.destination_port == 53 and header.protocol == "udp":
                dns = parse_dns(header.payload)
                query = dns.question[:512] if dns is not None else ""
            self._put(
                FlowObservation(
                    protocol=header.protocol,  # type: ignore[arg-type]
                    source=header.source,
                    destination=header.destination,
                    source_port=header.source_port,
                    destination_port=header.destination_port,
                    link=self.facts.get(packet.outdev),
                    hook=hook,  # type: ignore[arg-type]
                    process=process,
                    process_note=note[:512],
                    uid=packet.uid,
                    query_name=query,
                )
            )

    def _on_dns_answer(self, resolver: str, payload: bytes) -> None:
        message = parse_dns(payload)
        if message is None or not message.response or not j.in_zones(message.question, self.policy):
            return
        self._put(
            DnsAnswerObservation(
                resolver=resolver, name=message.question[:512], addresses=message.addresses()[:64]
            )
        )

    async def _every_accounting(self) -> None:
        while True:
            await asyncio.sleep(5)
            lost = (self.nflog.lost if self.nflog is not None else 0) + self.dropped
            if lost > self._reported_lost:
                self._put(
                    CounterObservation(
                        lost=lost - self._reported_lost,
                        detail="NFLOG sequence gaps and full observation queue",
                    )
                )
                self._reported_lost = lost

    # -- probes -----------------------------------------------------------------

    async def _every_probe(self) -> None:
        while True:
            settings = self.policy.settings.probe
            await asyncio.sleep(settings.interval_s if settings is not None else 60)
            await self._probe_all()

    async def _probe_all(self) -> None:
        settings = self.policy.settings.probe
        if settings is None or not self.policy.probe_targets:
            return
        links = [
            self.facts[i]
            for i, m in self.links.items()
            if m.up and i in self.facts and j.classify(self.facts[i]) != "loopback"
        ]
        mark = kernel_filter.PROBE_MARK if self.admin else None
        jobs = []
        for link in links:
            for target in self.policy.probe_targets:
                for method in settings.methods:
                    run = probe.probe_tcp if method == "tcp" else probe.probe_dns
                    port = settings.tcp_port if method == "tcp" else settings.dns_port
                    request = probe.ProbeTarget(
                        link.name,
                        str(target),
                        port,
                        settings.key,
                        self.host,
                        settings.timeout_s,
                        mark,
                    )
                    jobs.append((link, str(target), port, method, run(request)))
        results = await asyncio.gather(*(job[4] for job in jobs), return_exceptions=True)
        for (link, target_text, port, method, _), result in zip(jobs, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("outreach: probe crashed", interface=link.name, error=str(result))
                continue
            outcome, detail, rtt = result
            if outcome == "forged":
                log.warning(
                    "outreach: probe answered without a valid signature",
                    interface=link.name,
                    target=target_text,
                    method=method,
                    detail=detail,
                )
            if outcome in {"verified", "forged"}:
                self._put(
                    ProbeObservation(
                        link=link,
                        target=target_text,
                        port=port,
                        method=method,
                        outcome=outcome,
                        detail=detail[:512],
                        rtt_ms=rtt,
                    )
                )

    # -- host settings ------------------------------------------------------------

    async def _every_host_settings(self) -> None:
        while True:
            signature = await asyncio.to_thread(host_settings.signature)
            if signature != self._proxy_signature:
                self._proxy_signature = signature
                for found in await asyncio.to_thread(host_settings.proxy_settings):
                    key = (found.origin, found.variable, found.value)
                    if key not in self._proxies_seen:
                        self._proxies_seen.add(key)
                        self._put(found)
            await self._check_sharing()
            await asyncio.sleep(HOST_SETTINGS_EVERY_S)

    async def _check_sharing(self) -> None:
        state = await asyncio.to_thread(host_settings.sharing_state)
        if state != self._sharing:
            self._sharing = state
            self._put(state)

    # -- responses ----------------------------------------------------------------

    def _interfaces_to_block(self) -> list[str]:
        rules = [r for r in self.policy.responses("block") if r.match.signal == "interface"]
        return [
            self.facts[i].name
            for i, m in self.links.items()
            if m.up
            and i in self.facts
            and any(j.unapproved_for(r, self.facts[i], self.policy) for r in rules)
        ]

    def _links_to_down(self) -> dict[str, str]:
        """Interface name -> the rule asking for it to be down."""
        wanted: dict[str, str] = {}
        for rule in self.policy.responses("link-down"):
            for index, message in self.links.items():
                facts = self.facts.get(index)
                if facts is None or not message.up:
                    continue
                signal = rule.match.signal
                if (signal == "interface" and j.unapproved_for(rule, facts, self.policy)) or (
                    signal == "wifi"
                    and message.carrier
                    and j.classify(facts) == "wifi"
                    and not self.policy.settings.wireless_allowed
                ):
                    wanted.setdefault(facts.name, rule.id)
            if rule.match.signal == "route":
                for state in self.routes.values():
                    facts = self.facts.get(state[1]) if state[0] else None
                    if facts is not None and not j.approved(facts, self.policy):
                        wanted.setdefault(facts.name, rule.id)
        return wanted

    def _collector_interfaces(self) -> set[str]:
        names = set()
        for address in self.collector:
            if self.client is None:
                break
            with contextlib.suppress(OSError):
                answer = self.client.route_to(str(address))
                if answer.reachable and answer.oif in self.facts:
                    names.add(self.facts[answer.oif].name)
        return names

    async def _respond(self) -> None:
        if not self.admin:
            return
        await self._rebuild_filter()
        wanted = self._links_to_down()
        dry = self.policy.settings.dry_run
        protected = self._collector_interfaces() | {"lo"}
        by_name = {m.name: i for i, m in self.links.items()}
        for name, rule_id in wanted.items():
            if name in protected:
                self._put(
                    ActionObservation(
                        action="link-down",
                        rule_id=rule_id,
                        target=name,
                        ok=False,
                        detail="接口承载到采集端的路径，未禁用",
                    )
                )
                continue
            if dry:
                if name not in self.downed:
                    self.downed[name] = "dry-run"
                    self._put(
                        ActionObservation(
                            action="link-down", rule_id=rule_id, target=name, dry_run=True
                        )
                    )
                continue
            ok, detail = await asyncio.to_thread(self._set_link, by_name.get(name), name, False)
            self.downed[name] = rule_id
            self._put(
                ActionObservation(
                    action="link-down", rule_id=rule_id, target=name, ok=ok, detail=detail
                )
            )
        for name in list(self.downed):
            if name in wanted or self._still_asked(name):
                continue
            rule_id = self.downed.pop(name)
            if rule_id != "dry-run" and name in by_name:
                ok, detail = await asyncio.to_thread(self._set_link, by_name[name], name, True)
                self._put(
                    ActionObservation(
                        action="link-up", rule_id=rule_id, target=name, ok=ok, detail=detail
                    )
                )
        self._save_state()

    def _still_asked(self, name: str) -> bool:
        """Whether a link-down rule would still take this (now down) link down if it came up."""
        facts = next((f for f in self.facts.values() if f.name == name), None)
        if facts is None:
            return bool(self.policy.responses("link-down"))  # unplugged: keep the decision
        for rule in self.policy.responses("link-down"):
            signal = rule.match.signal
            if signal == "interface" and j.unapproved_for(rule, facts, self.policy):
                return True
            if signal == "route" and not j.approved(facts, self.policy):
                return True
            if (
                signal == "wifi"
                and j.classify(facts) == "wifi"
                and not self.policy.settings.wireless_allowed
            ):
                return True
        return False

    def _set_link(self, index: int | None, name: str, up: bool) -> tuple[bool, str]:
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

    def _load_state(self) -> None:
        with contextlib.suppress(OSError, ValueError, TypeError):
            state = json.loads((self.data_dir / STATE_FILE).read_text())
            self.downed = {str(k): str(v) for k, v in state.get("downed", {}).items()}

    def _save_state(self) -> None:
        with contextlib.suppress(OSError):
            path = self.data_dir / STATE_FILE
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"downed": self.downed, "saved_at": time.time()}))
            tmp.replace(path)
