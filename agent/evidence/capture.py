"""The capture child (取证抓包): ``python -m agent.evidence.capture ORDER_JSON OUT.pcap``.

Runs as its own short-lived process so that scapy, which costs tens of
megabytes, never loads into the daemon. In order:

1. read the ``CaptureOrder`` (JSON, the first argument);
2. sniff with scapy on the order's interface (every interface but loopback
   when it names none), the kernel BPF filter ``host PEER`` dropping all other
   traffic before it reaches Python;
3. write each packet from its IP header on (LINKTYPE_RAW, so packets of an
   Ethernet and of a PPP modem fit one file), cut after the transport header
   unless the order asks for the payload; the pcap record keeps the length on
   the wire;
4. stop at the first bound reached: ``duration_s``, ``max_packets`` or
   ``max_bytes`` of file;
5. print one JSON line: packets written, file bytes, and which bound stopped it.

Exit status 0 with the file written (perhaps with no packets), 2 on a bad
order or a capture that could not start (the reason on stderr).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Final

from agent.events import CaptureOrder

#: LINKTYPE_RAW: each record starts with an IPv4 or IPv6 header.
LINKTYPE_RAW: Final = 101
#: pcap file header and per-record header sizes.
FILE_HEADER_BYTES: Final = 24
RECORD_HEADER_BYTES: Final = 16
#: The snapshot length written in the file header.
SNAPLEN: Final = 65535


def bpf_filter(order: CaptureOrder) -> str | None:
    """The kernel filter: the peer's traffic, both ways; None keeps everything on the interface."""
    return f"host {order.peer}" if order.peer is not None else None


def kept_bytes(packet: Any, payload: bool) -> bytes:
    """The packet from its IP header on, cut after the transport header unless ``payload``."""
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.inet6 import IPv6

    network = packet.getlayer(IP) or packet.getlayer(IPv6)
    if network is None:
        return b""
    raw = bytes(network)
    if payload:
        return raw
    transport = None
    for layer in (TCP, UDP, ICMP):
        transport = packet.getlayer(layer)
        if transport is not None:
            break
    if transport is None and isinstance(network, IPv6):
        transport = next(
            (layer for layer in _layers(network) if type(layer).__name__.startswith("ICMPv6")),
            None,
        )
    if transport is None:  # a fragment or another protocol: the network headers only
        header = network
        while type(header.payload).__name__.startswith("IPv6ExtHdr"):
            header = header.payload
        return raw[: len(raw) - len(bytes(header.payload))]
    if type(transport).__name__.startswith("ICMP"):
        # An ICMP error quotes the offending packet's headers; its own header is 8 bytes.
        return raw[: len(raw) - len(bytes(transport)) + 8]
    return raw[: len(raw) - len(bytes(transport.payload))]


def _layers(packet: Any) -> list[Any]:
    layers = []
    while packet is not None and packet.__class__.__name__ != "NoPayload":
        layers.append(packet)
        packet = packet.payload
    return layers


def interfaces(order: CaptureOrder) -> list[str]:
    """The interfaces to sniff: the order's one, or every interface but loopback."""
    if order.interface is not None:
        return [order.interface]
    import socket

    return [name for _index, name in socket.if_nameindex() if name != "lo"]


def capture(order: CaptureOrder, out: Path) -> dict[str, Any]:
    """Steps 2-4 of the module docstring; returns the summary of step 5."""
    # The link layers must be registered before sniffing, or frames are not dissected.
    import scapy.layers.inet
    import scapy.layers.inet6
    import scapy.layers.l2  # noqa: F401 (imported for its registrations)
    from scapy.sendrecv import sniff
    from scapy.utils import RawPcapWriter

    written = {"packets": 0, "bytes": FILE_HEADER_BYTES}
    stopped = {"by": "duration"}
    with RawPcapWriter(str(out), linktype=LINKTYPE_RAW, snaplen=SNAPLEN, sync=False) as writer:
        writer.write_header(None)  # an empty capture is still a valid pcap

        def keep(packet: Any) -> bool:
            data = kept_bytes(packet, order.payload)
            if not data:
                return False
            size = RECORD_HEADER_BYTES + len(data)
            if written["bytes"] + size > order.max_bytes:
                stopped["by"] = "bytes"
                return True
            when = float(packet.time)
            seconds = int(when)
            wire = len(bytes(packet.getlayer("IP") or packet.getlayer("IPv6") or b""))
            writer.write_packet(data, sec=seconds, usec=int((when - seconds) * 1_000_000),
                                caplen=len(data), wirelen=max(wire, len(data)))
            written["packets"] += 1
            written["bytes"] += size
            if written["packets"] >= order.max_packets:
                stopped["by"] = "packets"
                return True
            return False

        started = time.monotonic()
        sniff(iface=interfaces(order), filter=bpf_filter(order), store=False,
              stop_filter=keep, timeout=order.duration_s)
    return {"packets": written["packets"], "bytes": out.stat().st_size, "stopped_by": stopped["by"],
            "seconds": round(time.monotonic() - started, 3)}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m agent.evidence.capture ORDER_JSON OUT.pcap", file=sys.stderr)
        return 2
    try:
        order = CaptureOrder.model_validate_json(args[0])
    except ValueError as exc:
        print(f"bad capture order: {exc}", file=sys.stderr)
        return 2
    try:
        summary = capture(order, Path(args[1]))
    except (OSError, ImportError, ValueError) as exc:
        print(f"capture failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
