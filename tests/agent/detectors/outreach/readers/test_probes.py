"""The probe protocol: signatures verify only with the right key and nonce."""

from __future__ import annotations

from agent.detectors.outreach.readers import probes


def test_signature_checks_key_method_and_nonce() -> None:
    answer = probes.signature("k" * 20, "tcp", "ab" * 16)
    assert probes.verify("k" * 20, "tcp", "ab" * 16, answer)
    assert not probes.verify("x" * 20, "tcp", "ab" * 16, answer)
    assert not probes.verify("k" * 20, "dns", "ab" * 16, answer)
    assert not probes.verify("k" * 20, "tcp", "cd" * 16, answer)


def test_dns_name_round_trip_with_unsafe_labels() -> None:
    name = probes.dns_name("ab" * 16, "WS_01.court", "usb 0")
    assert probes.parse_dns_name(name) == ("ab" * 16, "ws-01-court", "usb-0")
    assert probes.parse_dns_name("www.example.com") is None
