"""The host fingerprint: firmware UUID first, else burnt-in MACs, always with the hostname."""

from __future__ import annotations

from pathlib import Path

from agent.host_identity import host_fingerprint, host_key, permanent_macs, product_uuid

UUID = "4C4C4544-0042-3510-8051-B4C04F4E3332"


def fake_sysfs(root: Path, uuid: str | None = None,
               nics: dict[str, tuple[str, str, bool]] | None = None) -> Path:
    """A /sys tree with a product UUID and NICs as name → (address, assign type, physical)."""
    dmi = root / "class/dmi/id"
    dmi.mkdir(parents=True)
    if uuid is not None:
        (dmi / "product_uuid").write_text(uuid + "\n")
    for name, (address, assign_type, physical) in (nics or {}).items():
        nic = root / "class/net" / name
        nic.mkdir(parents=True)
        (nic / "address").write_text(address + "\n")
        (nic / "addr_assign_type").write_text(assign_type + "\n")
        if physical:
            (nic / "device").mkdir()
    return root


def test_product_uuid_is_the_key(tmp_path: Path) -> None:
    """A readable firmware UUID is the host key, in lower case."""
    root = fake_sysfs(tmp_path, UUID, {"eth0": ("52:54:00:12:34:56", "0", True)})
    assert host_key(root) == f"dmi:{UUID.lower()}"


def test_placeholder_uuid_falls_back_to_macs(tmp_path: Path) -> None:
    """A board's placeholder UUID names no machine, so the MACs decide."""
    root = fake_sysfs(tmp_path, "03000200-0400-0500-0006-000700080009",
                      {"eth0": ("52:54:00:12:34:56", "0", True)})
    assert product_uuid(root) is None
    assert host_key(root) == "mac:52:54:00:12:34:56"


def test_only_burnt_in_physical_macs_count(tmp_path: Path) -> None:
    """Random (Wi-Fi privacy), virtual and null addresses are left out, the rest sorted."""
    root = fake_sysfs(tmp_path, None, {
        "eth1": ("52:54:00:00:00:02", "0", True),
        "eth0": ("52:54:00:00:00:01", "0", True),
        "wlan0": ("7a:11:22:33:44:55", "1", True),
        "br0": ("52:54:00:00:00:09", "0", False),
        "lo": ("00:00:00:00:00:00", "0", False),
    })
    assert permanent_macs(root) == ["52:54:00:00:00:01", "52:54:00:00:00:02"]


def test_same_machine_same_fingerprint_across_reimage(tmp_path: Path) -> None:
    """Nothing the operating system writes goes in: two reads of one machine agree."""
    first = fake_sysfs(tmp_path / "a", UUID)
    second = fake_sysfs(tmp_path / "b", UUID)
    assert host_fingerprint("ws-001", first) == host_fingerprint("WS-001", second)


def test_hostname_separates_clones(tmp_path: Path) -> None:
    """Two clones sharing a firmware UUID but named apart are two hosts."""
    root = fake_sysfs(tmp_path, UUID)
    assert host_fingerprint("ws-001", root) != host_fingerprint("ws-002", root)


def test_no_key_no_fingerprint(tmp_path: Path) -> None:
    """Without a UUID or a physical NIC the agent sends no fingerprint (never supersedes)."""
    assert host_fingerprint("ws-001", fake_sysfs(tmp_path)) is None


def test_fingerprint_hides_the_identifiers(tmp_path: Path) -> None:
    """Only a SHA-256 leaves the host, never the UUID itself."""
    fingerprint = host_fingerprint("ws-001", fake_sysfs(tmp_path, UUID))
    assert fingerprint is not None and len(fingerprint) == 64
    assert UUID.lower() not in fingerprint
