"""The probe protocol: signatures verify only with the right key and nonce."""

from __future__ import annotations

from agent.detectors.outreach import probe


def test_signature_checks_key_method_and_nonce() -> None:
    answer = probe.signature("k" * 20, "tcp", "ab" * 16)
    assert probe.verify("k" * 20, "tcp", "ab" * 16, answer)
    assert not probe.verify("x" * 20, "tcp", "ab" * 16, answer)
    assert not probe.verify("k" * 20, "dns", "ab" * 16, answer)
    assert not probe.verify("k" * 20, "tcp", "cd" * 16, answer)


def test_dns_name_round_trip_with_unsafe_labels() -> None:
    name = probe.dns_name("ab" * 16, "WS_01.court", "usb 0")
    assert probe.parse_dns_name(name) == ("ab" * 16, "ws-01-court", "usb-0")
    assert probe.parse_dns_name("www.example.com") is None
