"""The collector's own TLS material: a private CA (EC P-256) and a server certificate it signs.

Agents pin the CA (``tls/ca.pem``), so the server certificate can be renewed
without touching workstations. Existing files are kept: ``ensure_tls`` makes
only what is missing. Keys are written 0600 from the start (never chmod after).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from collector.errors import TLSError
from collector.messages import _

CA_DAYS: Final = 3650
SERVER_DAYS: Final = 825  # the longest validity clients commonly accept for leaf certificates


@dataclass(frozen=True)
class TLSFiles:
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path

    @classmethod
    def in_dir(cls, directory: Path) -> TLSFiles:
        return cls(directory / "ca.pem", directory / "ca.key",
                   directory / "server.pem", directory / "server.key")


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def default_names(extra: Iterable[str] = ()) -> list[str]:
    """localhost, loopback addresses, this host's name, and ``extra`` (names or IPs)."""
    names = ["localhost", "127.0.0.1", "::1", socket.gethostname(), *extra]
    return list(dict.fromkeys(n for n in names if n))


def _san(names: Iterable[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def make_ca(now: datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "courtguard"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"courtguard collector CA {socket.gethostname()}"),
    ])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                          content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False,
                          encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_server_cert(
    ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, names: list[str],
    now: datetime,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=SERVER_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_san(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def ensure_tls(directory: Path, extra_names: Iterable[str] = ()) -> list[Path]:
    """Make the CA and server certificate in ``directory`` unless present; return new files."""
    files = TLSFiles.in_dir(directory)
    made: list[Path] = []
    now = datetime.now(UTC)
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if files.ca_cert.exists() and files.ca_key.exists():
            ca_key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
            ca_cert = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
            if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
                raise TLSError(_("{path} is not an EC private key").format(path=files.ca_key))
        else:
            ca_key, ca_cert = make_ca(now)
            _write_private(files.ca_key, _key_pem(ca_key))
            files.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
            made += [files.ca_key, files.ca_cert]
        if not (files.server_cert.exists() and files.server_key.exists()):
            key, cert = make_server_cert(ca_key, ca_cert, default_names(extra_names), now)
            files.server_key.unlink(missing_ok=True)
            _write_private(files.server_key, _key_pem(key))
            files.server_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
            made += [files.server_key, files.server_cert]
    except (OSError, ValueError) as exc:
        raise TLSError(_("cannot make TLS material in {directory}: {reason}")
                       .format(directory=directory, reason=exc)) from exc
    return made
