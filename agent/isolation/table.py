"""The isolation table ``inet courtguard_isolation``: drop everything but what an order allows.

A table of its own, so the outreach table (``inet courtguard``), rebuilt whole
whenever policy or interfaces change, never drops it, and lifting the
isolation never touches the outreach filter. nftables runs every base chain
of a hook and a drop in any of them is final, so this table isolates whatever
the other tables accept. Written whole and swapped in one ``nft -f``
transaction, like the outreach table:

1. sets ``pass4``/``pass6`` hold the collector's addresses and the order's
   ``allow`` networks; ``dns4``/``dns6`` the order's resolvers;
2. chain ``outbound`` (hook output) accepts loopback, the pass sets, DNS to
   the resolvers, DHCP (so the host keeps its address) and IPv6 neighbour
   discovery; everything else is counted and dropped, established flows too;
3. chain ``inbound`` (hook input) accepts the same peers' packets and drops
   the rest; chain ``forwarded`` drops everything (no sharing while isolated).
"""

from __future__ import annotations

import ipaddress
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from agent.detectors.outreach.readers.kernel_filter import FilterError, nft_path

TABLE: Final = "courtguard_isolation"
#: Before the outreach table's chains (priority filter = 0), so nothing is logged twice.
PRIORITY: Final = -10

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class IsolationPlan:
    """What the isolated host may still reach."""

    passing: tuple[IPNetwork, ...]
    resolvers: tuple[IPAddress, ...]


def plan_for(
    collector: Iterable[IPAddress], allow: Iterable[IPNetwork], resolvers: Iterable[IPAddress]
) -> IsolationPlan:
    networks = [ipaddress.ip_network(a) for a in collector] + list(allow)
    return IsolationPlan(tuple(networks), tuple(resolvers))


def _elements(networks: Iterable[IPNetwork | IPAddress], version: int) -> str:
    chosen = [ipaddress.ip_network(n) for n in networks if n.version == version]
    collapsed = list(ipaddress.collapse_addresses(chosen))  # type: ignore[type-var]  # one IP version
    if not collapsed:
        return ""
    return "elements = { " + ", ".join(str(n) for n in collapsed) + " }"


def ruleset(plan: IsolationPlan) -> str:
    """The whole table as nft script text (replacing any previous one atomically)."""
    nd_out = "nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit"
    nd_in = "nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert"
    lines = [
        f"table inet {TABLE}",
        f"delete table inet {TABLE}",
        f"table inet {TABLE} {{",
        f"  set pass4 {{ type ipv4_addr; flags interval; {_elements(plan.passing, 4)} }}",
        f"  set pass6 {{ type ipv6_addr; flags interval; {_elements(plan.passing, 6)} }}",
        f"  set dns4 {{ type ipv4_addr; flags interval; {_elements(plan.resolvers, 4)} }}",
        f"  set dns6 {{ type ipv6_addr; flags interval; {_elements(plan.resolvers, 6)} }}",
        "  chain outbound {",
        f"    type filter hook output priority {PRIORITY}; policy drop;",
        '    oifname "lo" accept',
        "    ip daddr @pass4 accept",
        "    ip6 daddr @pass6 accept",
        "    meta l4proto { tcp, udp } th dport 53 ip daddr @dns4 accept",
        "    meta l4proto { tcp, udp } th dport 53 ip6 daddr @dns6 accept",
        "    udp sport 68 udp dport 67 accept",
        f"    icmpv6 type {{ {nd_out} }} accept",
        "    counter drop",
        "  }",
        "  chain inbound {",
        f"    type filter hook input priority {PRIORITY}; policy drop;",
        '    iifname "lo" accept',
        "    ip saddr @pass4 accept",
        "    ip6 saddr @pass6 accept",
        "    meta l4proto { tcp, udp } th sport 53 ip saddr @dns4 accept",
        "    meta l4proto { tcp, udp } th sport 53 ip6 saddr @dns6 accept",
        "    udp sport 67 udp dport 68 accept",
        f"    icmpv6 type {{ {nd_in} }} accept",
        "    counter drop",
        "  }",
        "  chain forwarded {",
        f"    type filter hook forward priority {PRIORITY}; policy drop;",
        "    counter drop",
        "  }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def _nft(arguments: list[str], script: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (fixed binary; script on stdin)
        [nft_path(), *arguments], input=script, capture_output=True, text=True, timeout=30
    )


def apply(plan: IsolationPlan) -> None:
    """Load the table in one transaction; FilterError with nft's own message."""
    result = _nft(["-f", "-"], ruleset(plan))
    if result.returncode != 0:
        raise FilterError(f"nft refused the isolation table: {result.stderr.strip()[:400]}")


def remove() -> None:
    """Delete the table if it exists."""
    result = _nft(["-f", "-"], f"table inet {TABLE}\ndelete table inet {TABLE}\n")
    if result.returncode != 0:
        raise FilterError(
            f"nft could not remove the isolation table: {result.stderr.strip()[:400]}")


def present() -> bool:
    """Whether the kernel holds the table now (what a previous run or boot left)."""
    try:
        return _nft(["list", "table", "inet", TABLE]).returncode == 0
    except (FilterError, OSError, subprocess.SubprocessError):
        return False
