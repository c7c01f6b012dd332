"""Read an interface's facts from sysfs: driver, DEVTYPE, bus, USB vendor:product, wireless.

``/sys/class/net/<name>`` shows the links of the network namespace that
mounted sysfs; ``ip netns exec`` remounts it, so the agent sees its own
namespace's links. A link that vanished between the netlink message and the
read simply has fewer facts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from agent.detectors.outreach.observations import LinkFacts
from agent.detectors.outreach.readers.netlink import LinkMessage

SYS_NET: Final = Path("/sys/class/net")


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return ""


def _uevent(path: Path) -> dict[str, str]:
    values = {}
    for line in _read(path).splitlines():
        key, _, value = line.partition("=")
        values[key] = value
    return values


def _usb_id(device: Path) -> str:
    """vendor:product of the USB device above this interface, walking up the device path."""
    try:
        current = device.resolve()
    except OSError:
        return ""
    for _ in range(6):
        vendor, product = _read(current / "idVendor"), _read(current / "idProduct")
        if vendor and product:
            return f"{vendor}:{product}".lower()
        if current.parent == current:
            break
        current = current.parent
    return ""


def link_facts(message: LinkMessage, sys_net: Path = SYS_NET) -> LinkFacts:
    """Facts for one link from its netlink message and sysfs."""
    base = sys_net / message.name
    device = base / "device"
    uevent = _uevent(base / "uevent")
    driver = bus = usb_id = ""
    if device.exists():
        driver = (
            os.path.basename(os.path.realpath(device / "driver"))
            if (device / "driver").exists()
            else ""
        )
        bus = (
            os.path.basename(os.path.realpath(device / "subsystem"))
            if (device / "subsystem").exists()
            else ""
        )
        if bus == "usb" or "/usb" in os.path.realpath(device):
            bus = "usb"
            usb_id = _usb_id(device)
    return LinkFacts(
        name=message.name[:64],
        index=message.index,
        mac=message.mac[:64],
        iftype=message.iftype,
        driver=driver[:64],
        devtype=uevent.get("DEVTYPE", "")[:64],
        bus=bus[:64],
        usb_id=usb_id[:64],
        wireless=(base / "wireless").exists() or (base / "phy80211").exists(),
        link_kind=message.kind[:64],
    )
