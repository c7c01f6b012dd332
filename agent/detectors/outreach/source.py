"""The outreach source: merges its readers' observations and runs the responses the policy asks for.

Start-up, in order:

1. collector addresses from the credentials (never blocked, never reported);
2. rtnetlink subscription, then a full dump of links and addresses (again
   after every ENOBUFS), each difference from what we knew becomes an
   observation (``readers.links``);
3. the kernel filter (``inet courtguard``) built from the policy, the
   NFLOG group and the hold queue bound (``readers.flows``; needs
   CAP_NET_ADMIN; without it flows are not seen and no response runs, the
   rest works);
4. timers: route queries for the canaries and probes (``readers.probes``)
   run after any link/address/route change (debounced) and every
   ``probe.interval_s``; host settings (``readers.host_settings``): proxy
   files at start and whenever inotify reports a change where they live
   (every ``PROXIES_POLL_S`` where inotify is unavailable); forwarding,
   NAT and hotspot on netconf, ruleset and link changes, and every
   ``HOST_SETTINGS_EVERY_S`` for what changes without an event (a hotspot
   program started before its interface comes up);
5. lost flows (NFLOG sequence gaps, a full queue) are reported
   ``LOSS_REPORT_S`` after the first loss, not on a timer.

Responses (block, link-down) are planned by ``response_plan`` from what the
readers saw, carried out by ``response`` and reported as
``ActionObservation``; they are undone when the policy stops asking for
them. Nothing blocks the event loop except short /proc, sysfs and netlink
reads; nft and nmcli run in threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import socket
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import structlog

from agent.detector import SourceContext, SourceUnavailable
from agent.detectors.outreach import judgement as j
from agent.detectors.outreach import response_plan
from agent.detectors.outreach.observations import CounterObservation
from agent.detectors.outreach.policy import IPAddress, NetworksPolicy
from agent.detectors.outreach.readers import kernel_filter
from agent.detectors.outreach.readers.flows import FlowReader
from agent.detectors.outreach.readers.host_settings import HostSettingsReader, ProxyWatch
from agent.detectors.outreach.readers.links import LinkReader
from agent.detectors.outreach.readers.netlink import RulesetSubscription
from agent.detectors.outreach.readers.probes import probe_links
from agent.detectors.outreach.response import Responder

log = structlog.get_logger("courtguard.outreach")

#: Sharing is read on every netconf, ruleset and link change; this timer is the safety net,
#: and each read runs ``nft list ruleset`` and lists every process.
HOST_SETTINGS_EVERY_S: Final = 300.0
#: Proxy files are read this often where inotify cannot say when they change.
PROXIES_POLL_S: Final = 30.0
#: Losses in a burst are summed into one report this long after the first.
LOSS_REPORT_S: Final = 5.0
CHANGE_DEBOUNCE_S: Final = 0.3
PROBE_DEBOUNCE_S: Final = 1.0
QUEUE_MAX: Final = 20_000


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
        self.collector: tuple[IPAddress, ...] = ()
        self.links: LinkReader | None = None
        self.flows: FlowReader | None = None
        self.rulesets: RulesetSubscription | None = None
        self.host_settings = HostSettingsReader()
        self.responder = Responder(self.data_dir, self._put)
        self.dropped = 0
        self._reported_lost = 0
        self._change_handle: asyncio.TimerHandle | None = None
        self._probe_handle: asyncio.TimerHandle | None = None
        self._sharing_handle: asyncio.TimerHandle | None = None
        self._proxy_handle: asyncio.TimerHandle | None = None
        self.proxy_watch: ProxyWatch | None = None
        self._logged_handle: asyncio.TimerHandle | None = None
        self._loss_handle: asyncio.TimerHandle | None = None
        self._tasks: list[asyncio.Task[Any]] = []

    # -- lifecycle ---------------------------------------------------------------

    async def observations(self) -> AsyncIterator[Any]:
        loop = asyncio.get_running_loop()
        self.collector = await asyncio.to_thread(collector_addresses, self.data_dir)
        try:
            links = self.links = LinkReader(self._put)
        except OSError as exc:
            raise SourceUnavailable(f"rtnetlink unavailable: {exc}") from exc
        self.responder.load_state()
        try:
            loop.add_reader(links.fileno(), self._on_links)
            if self.admin:
                # NAT rules (sharing) appear through nftables, not rtnetlink.
                with contextlib.suppress(OSError):
                    rulesets = self.rulesets = RulesetSubscription()
                    loop.add_reader(rulesets.fileno(), self._on_ruleset)
            links.resync()
            self._schedule_change()
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
        if self.proxy_watch is not None:
            await asyncio.to_thread(self.proxy_watch.stop)
        for handle in (
            self._change_handle,
            self._probe_handle,
            self._sharing_handle,
            self._proxy_handle,
            self._logged_handle,
            self._loss_handle,
        ):
            if handle is not None:
                handle.cancel()
        for reader in (self.links, self.flows, self.rulesets):
            if reader is not None:
                with contextlib.suppress(ValueError, OSError):
                    loop.remove_reader(reader.fileno())
                reader.close()
        if self.admin:
            await self.responder.stop()

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
            self._note_loss()

    # -- links, addresses, routes -------------------------------------------------

    def _on_links(self) -> None:
        if self.links is None:
            return
        changed, netconf = self.links.read()
        if netconf:
            self._spawn(self._check_sharing())
        if changed:
            self._schedule_change()
            self._schedule_sharing()  # a new or raised interface may be a hotspot's

    def _on_ruleset(self) -> None:
        """The ruleset changed (ours included): look at sharing again once it settles."""
        if self.rulesets is None:
            return
        self.rulesets.drain()
        self._schedule_sharing()

    def _schedule_sharing(self) -> None:
        """Read the sharing state once a burst of changes settles."""
        if self._sharing_handle is not None:
            self._sharing_handle.cancel()
        self._sharing_handle = asyncio.get_running_loop().call_later(
            CHANGE_DEBOUNCE_S,
            lambda: self._spawn(self._check_sharing()),
        )

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
        if self.links is not None:
            self.links.check_routes(self.policy.canary_addresses)
        self._spawn(self._respond())

    # -- flows from the kernel filter ---------------------------------------------

    async def _start_filter(self) -> None:
        if self.flows is None:
            try:
                self.flows = FlowReader(
                    self.policy.settings.nflog_group, self._put, self.policy.settings.hold_queue
                )
            except OSError as exc:
                log.warning("outreach: cannot bind NFLOG; flows are not watched", error=str(exc))
                return
            loop = asyncio.get_running_loop()
            loop.add_reader(self.flows.fileno(), self._on_flows)
            if self.flows.queue is not None:
                links = self.links
                self.flows.start_holding(
                    lambda: self.policy,
                    lambda index: links.link(index) if links is not None else None,
                    lambda found: loop.call_soon_threadsafe(self._put, found),
                )
            elif self.flows.queue_error:
                log.warning(
                    "outreach: cannot bind the hold queue; flows are only logged",
                    error=self.flows.queue_error,
                )
            await self.responder.adopt_table()
        await self._apply_filter()

    async def _apply_filter(self) -> None:
        states = self.links.states() if self.links is not None else []
        await self.responder.apply_filter(
            self.policy,
            self.collector,
            response_plan.interfaces_to_block(self.policy, states),
        )

    def _on_flows(self) -> None:
        if self.flows is None or self.links is None:
            return
        lost = self.flows.lost
        due = self.flows.read(self.policy, self.links.link)
        if self.flows.lost != lost:
            self._note_loss()
        if due is not None and self._logged_handle is None:
            self._logged_handle = asyncio.get_running_loop().call_later(due, self._flush_logged)

    def _flush_logged(self) -> None:
        """Report logged flows whose held twin did not come (fail-open passed them)."""
        self._logged_handle = None
        self._on_flows()

    def _note_loss(self) -> None:
        """Something was lost: report it, with whatever else is lost meanwhile, shortly."""
        if self._loss_handle is None:
            self._loss_handle = asyncio.get_running_loop().call_later(
                LOSS_REPORT_S, self._report_lost
            )

    def _report_lost(self) -> None:
        self._loss_handle = None
        lost = (self.flows.lost if self.flows is not None else 0) + self.dropped
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
        if self.links is None:
            return
        links = [
            link.facts
            for link in self.links.states()
            if link.up and j.classify(link.facts) != "loopback"
        ]
        mark = kernel_filter.PROBE_MARK if self.admin else None
        async for found in probe_links(links, self.policy, self.host, mark):
            self._put(found)

    # -- host settings ------------------------------------------------------------

    async def _every_host_settings(self) -> None:
        loop = asyncio.get_running_loop()

        def changed() -> None:  # called on watchdog's thread
            loop.call_soon_threadsafe(self._proxies_changed)

        watch = ProxyWatch(changed)
        if await asyncio.to_thread(watch.start):
            self.proxy_watch = watch
        await self._check_proxies()
        if self.proxy_watch is None:
            self._spawn(self._poll_proxies())
        while True:
            await self._check_sharing()
            await asyncio.sleep(HOST_SETTINGS_EVERY_S)

    async def _poll_proxies(self) -> None:
        """Where inotify is unavailable: read the proxy files on a timer."""
        while True:
            await asyncio.sleep(PROXIES_POLL_S)
            await self._check_proxies()

    def _proxies_changed(self) -> None:
        """inotify saw a change where proxy files live: read them shortly, once for a burst.

        The first change schedules the read and later ones join it, so files
        written without pause cannot postpone it for ever.
        """
        if self._proxy_handle is None:
            self._proxy_handle = asyncio.get_running_loop().call_later(
                CHANGE_DEBOUNCE_S, lambda: self._spawn(self._check_proxies())
            )

    async def _check_proxies(self) -> None:
        self._proxy_handle = None
        for found in await self.host_settings.new_proxies():
            self._put(found)
        if self.proxy_watch is not None:
            await asyncio.to_thread(self.proxy_watch.replan)

    async def _check_sharing(self) -> None:
        state = await self.host_settings.new_sharing()
        if state is not None:
            self._put(state)

    # -- responses ----------------------------------------------------------------

    async def _respond(self) -> None:
        if not self.admin or self.links is None:
            return
        await self._apply_filter()
        states = self.links.states()
        protected = self.links.route_interfaces(self.collector) | {"lo"}
        steps = response_plan.link_steps(
            self.policy, states, self.links.routed(), protected, self.responder.downed
        )
        await self.responder.apply_links(steps, self.links.indexes())


def make_source(context: SourceContext) -> OutreachSource:
    return OutreachSource(context)
