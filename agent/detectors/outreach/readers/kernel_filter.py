"""The agent's own nftables table: log violating new flows to NFLOG, and (if asked) block.

The table ``inet courtguard`` is written whole and swapped in one ``nft -f``
transaction, so it is never half-built:

1. sets ``allow4``/``allow6`` hold the intranet lists, the always-allowed
   ranges and the collector's addresses; ``resolve4``/``resolve6`` the
   allowed resolvers;
2. chain ``watch`` (jumped to for ``ct state new`` packets leaving the host or
   forwarded through it) logs to the NFLOG group exactly the flows that break
   policy; the agent's own probes carry a mark and are not logged;
3. with ``block``, chains ``outbound``/``forwarded`` drop whatever is not allowed
   (collector and loopback always pass) and everything leaving through an
   interface the policy does not approve;
4. with a ``hold_queue``, chain ``hold_out`` sends the packets ``watch_out``
   logged and the drops let through to chain ``hold``, whose one rule is
   ``queue num N bypass``: the first packet of each new outside flow waits in
   the kernel until the agent has found its process (``readers.nfqueue``).
   Intranet traffic and established flows never reach it. It comes after the
   drops, because a queue verdict ends the chain: a packet the agent accepts
   skips the rules below it. ``bypass`` lets packets through while no agent
   is bound to the queue, so a stopped or killed agent cuts nothing;
5. with DNS answers judged, chain ``answers`` logs DNS responses so the agent
   can compare intranet names with the addresses they resolve to.

The queue rule is added by netlink right after the table is loaded
(``nfqueue.add_queue_rule``), as the xtables NFQUEUE target: it works on
kernels built without nft's own ``queue`` expression. Between the two steps
the ``hold`` chain is empty and new flows pass unheld, logged as before.

Python sees only what the kernel let through these rules.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from agent.detectors.outreach.policy import ALWAYS_ALLOWED, IPAddress, IPNetwork, NetworksPolicy
from agent.detectors.outreach.readers import nfqueue

TABLE: Final = "courtguard"
#: SO_MARK on the agent's probe packets, so the filter does not report the agent's own probes.
PROBE_MARK: Final = 0x43470001
PREFIX_OUT: Final = "cg-out"
PREFIX_FWD: Final = "cg-fwd"
PREFIX_DNS_ANSWER: Final = "cg-ans"
HOLD_CHAIN: Final = "hold"


class FilterError(RuntimeError):
    """nft refused the ruleset or is missing; the message says which."""


@dataclass(frozen=True)
class FilterPlan:
    """Everything the table is built from; equal plans mean no rebuild is needed."""

    group: int
    allow: tuple[IPNetwork, ...]
    collector: tuple[IPAddress, ...] = ()
    resolvers: tuple[IPAddress, ...] = ()
    watch_dns_answers: bool = False
    block_destinations: bool = False
    blocked_interfaces: tuple[str, ...] = field(default=())
    #: NFQUEUE number holding first packets until attributed; None: nothing is held.
    hold_queue: int | None = None
    #: Destinations of program grants: outside, yet not dropped by a destination block.
    granted: tuple[IPNetwork, ...] = ()


def plan_for(
    policy: NetworksPolicy,
    collector: Iterable[IPAddress] = (),
    *,
    dry_run_blocks: bool = False,
    blocked_interfaces: Iterable[str] = (),
) -> FilterPlan:
    """The plan a policy asks for; ``dry_run_blocks`` leaves enforcement out."""
    networks = [*ALWAYS_ALLOWED, *policy.intranet_networks]
    collector = tuple(collector)
    networks += [ipaddress.ip_network(a) for a in collector]
    block = any(r.match.signal in {"flow", "dns"} for r in policy.responses("block"))
    return FilterPlan(
        group=policy.settings.nflog_group,
        allow=tuple(networks),
        collector=collector,
        resolvers=tuple(sorted(policy.resolver_set, key=lambda a: (a.version, a))),
        watch_dns_answers=bool(policy.rules_for("dns_answer")) and bool(policy.zones),
        block_destinations=block and not dry_run_blocks,
        blocked_interfaces=() if dry_run_blocks else tuple(sorted(set(blocked_interfaces))),
        hold_queue=policy.settings.hold_queue,
        granted=tuple(n for _grant, nets in policy.grant_networks for n in nets),
    )


def _elements(networks: Iterable[IPNetwork | IPAddress], version: int) -> str:
    chosen = [ipaddress.ip_network(n) for n in networks if n.version == version]
    # typeshed wants one network type; ``chosen`` holds only ``version``'s, filtered above.
    collapsed = list(ipaddress.collapse_addresses(chosen))  # type: ignore[type-var]  # one IP version
    if not collapsed:
        return ""
    return "elements = { " + ", ".join(str(n) for n in collapsed) + " }"


def ruleset(plan: FilterPlan) -> str:
    """The whole table as nft script text (replacing any previous one atomically)."""
    group = plan.group
    log_out = f'log group {group} prefix "{PREFIX_OUT}"'
    log_fwd = f'log group {group} prefix "{PREFIX_FWD}"'
    lines = [
        f"table inet {TABLE}",
        f"delete table inet {TABLE}",
        f"table inet {TABLE} {{",
        f"  set allow4 {{ type ipv4_addr; flags interval; {_elements(plan.allow, 4)} }}",
        f"  set allow6 {{ type ipv6_addr; flags interval; {_elements(plan.allow, 6)} }}",
        f"  set resolve4 {{ type ipv4_addr; flags interval; {_elements(plan.resolvers, 4)} }}",
        f"  set resolve6 {{ type ipv6_addr; flags interval; {_elements(plan.resolvers, 6)} }}",
        f"  set collector4 {{ type ipv4_addr; flags interval; {_elements(plan.collector, 4)} }}",
        f"  set collector6 {{ type ipv6_addr; flags interval; {_elements(plan.collector, 6)} }}",
        f"  set grant4 {{ type ipv4_addr; flags interval; {_elements(plan.granted, 4)} }}",
        f"  set grant6 {{ type ipv6_addr; flags interval; {_elements(plan.granted, 6)} }}",
    ]
    for name, log in (("watch_out", log_out), ("watch_fwd", log_fwd)):
        lines.append(f"  chain {name} {{")
        lines.append(f"    meta mark {PROBE_MARK:#x} return")
        if plan.resolvers:
            for family, rset in (("ip", "resolve4"), ("ip6", "resolve6")):
                lines.append(
                    f"    meta nfproto {'ipv4' if family == 'ip' else 'ipv6'} "
                    f"meta l4proto {{ tcp, udp }} th dport 53 {family} daddr != @{rset} "
                    f"counter {log} return"
                )
        lines.append(f"    ip daddr != @allow4 counter {log}")
        lines.append(f"    ip6 daddr != @allow6 counter {log}")
        lines.append("  }")
    if plan.hold_queue is not None:
        # The same selection as watch_out, to the queue instead of the log.
        lines.append(f"  chain {HOLD_CHAIN} {{")
        lines.append("  }")
        lines.append("  chain hold_out {")
        lines.append(f"    meta mark {PROBE_MARK:#x} return")
        if plan.resolvers:
            for family, rset in (("ip", "resolve4"), ("ip6", "resolve6")):
                lines.append(
                    f"    meta nfproto {'ipv4' if family == 'ip' else 'ipv6'} "
                    f"meta l4proto {{ tcp, udp }} th dport 53 {family} daddr != @{rset} "
                    f"jump {HOLD_CHAIN}"
                )
        lines.append(f"    ip daddr != @allow4 jump {HOLD_CHAIN}")
        lines.append(f"    ip6 daddr != @allow6 jump {HOLD_CHAIN}")
        lines.append("  }")
    for name, hook, watch in (
        ("outbound", "output", "watch_out"),
        ("forwarded", "forward", "watch_fwd"),
    ):
        lines.append(f"  chain {name} {{")
        lines.append(f"    type filter hook {hook} priority filter; policy accept;")
        lines.append('    oifname "lo" accept')
        lines.append(f"    ct state new jump {watch}")
        if plan.blocked_interfaces:
            names = ", ".join(f'"{n}"' for n in plan.blocked_interfaces)
            lines.append(f"    oifname {{ {names} }} ip daddr != @collector4 counter drop")
            lines.append(f"    oifname {{ {names} }} ip6 daddr != @collector6 counter drop")
        if plan.block_destinations:
            lines.append("    ip daddr != @allow4 ip daddr != @grant4 counter drop")
            lines.append("    ip6 daddr != @allow6 ip6 daddr != @grant6 counter drop")
        if plan.hold_queue is not None and hook == "output":
            lines.append("    ct state new jump hold_out")
        lines.append("  }")
    if plan.watch_dns_answers:
        lines.append("  chain answers {")
        lines.append("    type filter hook input priority filter; policy accept;")
        lines.append(
            f"    meta l4proto {{ tcp, udp }} th sport 53 log group {group} "
            f'prefix "{PREFIX_DNS_ANSWER}"'
        )
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def nft_path() -> str:
    path = shutil.which("nft") or next(
        (p for p in ("/usr/sbin/nft", "/sbin/nft") if os.path.exists(p)), None
    )
    if path is None:
        raise FilterError("the nft command is missing; install the nftables package")
    return path


def apply(script: str) -> None:
    """Load nft script text in one transaction; raise FilterError with nft's own message."""
    result = subprocess.run(  # noqa: S603 (fixed binary, script on stdin)
        [nft_path(), "-f", "-"], input=script, capture_output=True, text=True, timeout=30
    )
    if result.returncode != 0:
        raise FilterError(f"nft refused the courtguard table: {result.stderr.strip()[:400]}")


def install(plan: FilterPlan) -> str:
    """Load the plan's table, then its queue rule; "" or why first packets are not held.

    A refused queue rule leaves the table working as a log-only filter.
    """
    apply(ruleset(plan))
    if plan.hold_queue is None:
        return ""
    try:
        nfqueue.add_queue_rule(TABLE, HOLD_CHAIN, plan.hold_queue)
    except OSError as exc:
        return str(exc)
    return ""


def remove() -> None:
    """Delete the table if it exists."""
    apply(f"table inet {TABLE}\ndelete table inet {TABLE}\n")


def enforcement() -> tuple[bool, tuple[str, ...]]:
    """What an existing table enforces: (drops outside destinations, interfaces it drops on)."""
    try:
        result = subprocess.run(  # noqa: S603 (fixed binary and arguments)
            [nft_path(), "list", "table", "inet", TABLE], capture_output=True, text=True, timeout=30
        )
    except (FilterError, OSError, subprocess.SubprocessError):
        return False, ()
    if result.returncode != 0:
        return False, ()
    destinations = False
    interfaces: set[str] = set()
    for line in result.stdout.splitlines():
        words = line.split()
        if "drop" not in words:
            continue
        if words[:1] == ["oifname"]:
            names = []
            for word in words[1:]:
                if word in {"ip", "ip6"}:
                    break
                if word.strip('{},"'):
                    names.append(word.strip('{},"'))
            interfaces.update(names)
        elif words[:2] in (["ip", "daddr"], ["ip6", "daddr"]):
            destinations = True
    return destinations, tuple(sorted(interfaces))


def counters() -> dict[str, int]:
    """Packets counted by the table's rules, keyed by chain name (summed)."""
    result = subprocess.run(  # noqa: S603 (fixed binary and arguments)
        [nft_path(), "list", "table", "inet", TABLE], capture_output=True, text=True, timeout=30
    )
    totals: dict[str, int] = {}
    chain = ""
    for line in result.stdout.splitlines():
        words = line.split()
        if words[:1] == ["chain"] and len(words) > 1:
            chain = words[1]
        if "counter" in words and "packets" in words:
            index = words.index("packets")
            totals[chain] = totals.get(chain, 0) + int(words[index + 1])
    return totals
