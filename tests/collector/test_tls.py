"""The collector's CA and server certificate."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from cryptography import x509

from collector.tls import TLSFiles, ensure_tls


def test_server_cert_names(tmp_path: Path) -> None:
    """The server certificate covers localhost, loopback and the extra names given."""
    ensure_tls(tmp_path, ["collector.court.example", "198.18.0.10"])
    cert = x509.load_pem_x509_certificate(TLSFiles.in_dir(tmp_path).server_cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"localhost", "collector.court.example"} <= set(san.get_values_for_type(x509.DNSName))
    ips = set(san.get_values_for_type(x509.IPAddress))
    assert {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("198.18.0.10")} <= ips


def test_server_cert_signed_by_ca(tmp_path: Path) -> None:
    """The server certificate verifies against the CA agents pin."""
    ensure_tls(tmp_path)
    files = TLSFiles.in_dir(tmp_path)
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    server = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    server.verify_directly_issued_by(ca)


def test_keys_private(tmp_path: Path) -> None:
    """Private keys are 0600."""
    ensure_tls(tmp_path)
    files = TLSFiles.in_dir(tmp_path)
    assert {p.stat().st_mode & 0o777 for p in (files.ca_key, files.server_key)} == {0o600}


def test_existing_kept(tmp_path: Path) -> None:
    """A second run makes nothing and keeps the files."""
    assert len(ensure_tls(tmp_path)) == 4
    assert ensure_tls(tmp_path) == []
