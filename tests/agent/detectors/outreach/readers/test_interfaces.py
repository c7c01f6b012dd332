"""Interface facts from sysfs: a USB modem and a PCI Wi-Fi card laid out as the kernel does."""

from __future__ import annotations

import os
from pathlib import Path

from agent.detectors.outreach.readers.interfaces import link_facts
from agent.detectors.outreach.readers.netlink import LinkMessage


def message(name: str, index: int = 5, iftype: int = 1, kind: str = "") -> LinkMessage:
    return LinkMessage(index, name, iftype, 0x1, "02:00:00:00:00:05", kind, True, False)


def sysfs_link(
    root: Path, name: str, device: str, driver: str, bus: str, uevent: str = ""
) -> Path:
    """/sys/class/net/<name> pointing at a device directory, as on a real machine."""
    devices = root / "devices"
    device_dir = devices / device
    device_dir.mkdir(parents=True)
    (root / "bus" / bus / "drivers" / driver).mkdir(parents=True)
    os.symlink(root / "bus" / bus / "drivers" / driver, device_dir / "driver")
    os.symlink(root / "bus" / bus, device_dir / "subsystem")
    net = root / "class" / "net" / name
    net.mkdir(parents=True)
    os.symlink(device_dir, net / "device")
    (net / "uevent").write_text(f"INTERFACE={name}\nIFINDEX=5\n{uevent}")
    return net


def test_usb_modem_reports_driver_devtype_and_the_usb_id_above_it(tmp_path: Path) -> None:
    usb_device = "pci0000:00/0000:00:14.0/usb1/1-2"
    sysfs_link(tmp_path, "wwan0", f"{usb_device}/1-2:1.4", "qmi_wwan", "usb", "DEVTYPE=wwan\n")
    (tmp_path / "devices" / usb_device / "idVendor").write_text("05C6\n")
    (tmp_path / "devices" / usb_device / "idProduct").write_text("9025\n")
    facts = link_facts(message("wwan0", iftype=65534), tmp_path / "class" / "net")
    assert (facts.driver, facts.devtype, facts.bus, facts.usb_id) == (
        "qmi_wwan",
        "wwan",
        "usb",
        "05c6:9025",
    )
    assert (facts.name, facts.index, facts.iftype, facts.wireless) == ("wwan0", 5, 65534, False)


def test_pci_wifi_card_is_wireless_without_a_usb_id(tmp_path: Path) -> None:
    device = "pci0000:00/0000:02:00.0"
    net = sysfs_link(tmp_path, "wlp2s0", device, "iwlwifi", "pci", "DEVTYPE=wlan\n")
    (net / "wireless").mkdir()
    facts = link_facts(message("wlp2s0"), tmp_path / "class" / "net")
    assert (facts.driver, facts.bus, facts.devtype, facts.usb_id, facts.wireless) == (
        "iwlwifi",
        "pci",
        "wlan",
        "",
        True,
    )


def test_virtual_or_vanished_links_have_only_their_netlink_facts(tmp_path: Path) -> None:
    facts = link_facts(message("veth0", kind="veth"), tmp_path)
    assert (facts.name, facts.link_kind, facts.driver, facts.bus, facts.devtype) == (
        "veth0",
        "veth",
        "",
        "",
        "",
    )


def test_loopback_on_this_machine() -> None:
    facts = link_facts(message("lo", index=1, iftype=772))
    assert (facts.name, facts.iftype, facts.bus, facts.usb_id) == ("lo", 772, "", "")
