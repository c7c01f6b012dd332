"""Links, addresses and routes from rtnetlink: every difference from what we knew is an observation.

The reader keeps the links and addresses it has seen, so a change message or
a full dump (at start and after every ENOBUFS) yields only what changed. It
also answers route queries: the canaries' routes become observations, the
collector's route says which interfaces must never be taken down.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Callable, Iterable
from typing import Any, Final

import structlog

from agent.detectors.outreach.observations import (
    AddressObservation,
    LinkFacts,
    LinkObservation,
    RouteObservation,
)
from agent.detectors.outreach.readers.interfaces import link_facts
from agent.detectors.outreach.readers.netlink import (
    AddressMessage,
    LinkMessage,
    OtherMessage,
    RtnlClient,
    RtnlSubscription,
)
from agent.detectors.outreach.response_plan import LinkState

log = structlog.get_logger("courtguard.outreach")

#: rtnetlink message types of netconf changes: forwarding may have changed.
NETCONF_KINDS: Final = frozenset({80, 81})


class LinkReader:
    """What rtnetlink says about links, addresses and routes; ``put`` receives the observations.

    Opening it subscribes and opens the request socket (``OSError`` when
    rtnetlink is unavailable); ``close`` releases both.
    """

    def __init__(self, put: Callable[[Any], None]) -> None:
        self._put = put
        self.subscription = RtnlSubscription()
        try:
            self.client = RtnlClient()
        except OSError:
            self.subscription.close()
            raise
        self.links: dict[int, LinkMessage] = {}
        self.facts: dict[int, LinkFacts] = {}
        self.addresses: set[tuple[int, str, int]] = set()
        #: canary -> (reachable, oif, gateway, source) of its last reported route.
        self.routes: dict[str, tuple[bool, int, str, str]] = {}

    def fileno(self) -> int:
        return self.subscription.fileno()

    def close(self) -> None:
        self.subscription.close()
        self.client.close()

    def read(self) -> tuple[bool, bool]:
        """Handle every waiting message: (anything changed, a netconf change arrived)."""
        try:
            messages = self.subscription.read()
        except OSError as exc:
            if exc.errno != errno.ENOBUFS:
                raise
            log.warning("outreach: rtnetlink overrun; resynchronising with a full dump")
            self.resync()
            return True, False
        changed = netconf = False
        for message in messages:
            if isinstance(message, LinkMessage):
                changed |= self._on_link(message)
            elif isinstance(message, AddressMessage):
                changed |= self._on_address(message)
            elif isinstance(message, OtherMessage):
                changed = True
                netconf |= message.kind in NETCONF_KINDS
        return changed, netconf

    def resync(self) -> None:
        """Full dump: every difference from what we knew becomes an observation."""
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

    def check_routes(self, canaries: Iterable[Any]) -> None:
        """Ask the kernel each canary's route; a route unlike the last one is an observation."""
        for canary in canaries:
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

    def route_interfaces(self, addresses: Iterable[Any]) -> set[str]:
        """Names of the interfaces the kernel would use to reach ``addresses`` now."""
        names = set()
        for address in addresses:
            with contextlib.suppress(OSError):
                answer = self.client.route_to(str(address))
                if answer.reachable and answer.oif in self.facts:
                    names.add(self.facts[answer.oif].name)
        return names

    def link(self, index: int) -> LinkFacts | None:
        return self.facts.get(index)

    def states(self) -> list[LinkState]:
        """Every known link with its facts and state, in the order they were first seen."""
        return [
            LinkState(self.facts[i], m.up, m.carrier)
            for i, m in self.links.items()
            if i in self.facts
        ]

    def routed(self) -> list[LinkFacts]:
        """The links the canaries' last reported routes go through."""
        return [
            self.facts[oif]
            for reachable, oif, _gateway, _source in self.routes.values()
            if reachable and oif in self.facts
        ]

    def indexes(self) -> dict[str, int]:
        """Interface name -> index, for every link present."""
        return {m.name: i for i, m in self.links.items()}
