"""The collector's policy signing key: made by ``init``, read by ``policy publish``.

The private key is ``<data_dir>/policy-signing.key`` (PKCS#8 PEM, mode 0600,
owned by the collector's user), of the algorithm chosen at the first ``init``
(``--signature-algorithm ed25519``, the default, or ``sm2``) and kept for the
store's life: agents pin its algorithm and public half at enrollment. An SM2
key file has the layout ``openssl genpkey -algorithm SM2`` writes
(``id-ecPublicKey`` with the SM2 curve, ``ECPrivateKey`` with the public
point), so ``openssl pkey -in policy-signing.key -text`` reads it.
Several collector processes must sign with one key: the store remembers the
public half of the first key (``policy_keys``), and a process whose file holds
another key is refused with the instruction to copy the first.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from agent.events import utcnow
from agent.signing import (
    ALGORITHMS,
    DEFAULT_ALGORITHM,
    Ed25519Signer,
    PublicKey,
    Signer,
    Sm2Signer,
    generate_signer,
)
from collector.errors import ConfigError
from collector.messages import _
from collector.store.database import Database
from collector.store.tables import policy_keys

KEY_FILE: Final = "policy-signing.key"

# PKCS#8 PrivateKeyInfo of an SM2 key as OpenSSL 3 writes it: algorithm id-ecPublicKey
# (1.2.840.10045.2.1) with the SM2 curve (1.2.156.10197.1.301), then an ECPrivateKey
# (version 1, the 32-byte private key, [1] the uncompressed public point).
_SM2_PKCS8_HEAD: Final = bytes.fromhex(
    "308187020100301306072a8648ce3d020106082a811ccf5501822d046d306b0201010420")
_SM2_PKCS8_MIDDLE: Final = bytes.fromhex("a14403420004")
_SM2_PKCS8_LENGTH: Final = len(_SM2_PKCS8_HEAD) + 32 + len(_SM2_PKCS8_MIDDLE) + 64
_PEM_BEGIN: Final = b"-----BEGIN PRIVATE KEY-----"
_PEM_END: Final = b"-----END PRIVATE KEY-----"


def key_path(data_dir: Path) -> Path:
    return data_dir / KEY_FILE


def signer_pem(signer: Signer) -> bytes:
    """The key file's bytes for ``signer``: PKCS#8 PEM."""
    if isinstance(signer, Sm2Signer):
        der = (_SM2_PKCS8_HEAD + signer.private.to_bytes(32, "big") + _SM2_PKCS8_MIDDLE
               + signer.public_key.raw)
        body = base64.encodebytes(der).replace(b"\n", b"")
        lines = [body[i:i + 64] for i in range(0, len(body), 64)]
        return b"\n".join([_PEM_BEGIN, *lines, _PEM_END]) + b"\n"
    if isinstance(signer, Ed25519Signer):
        from cryptography.hazmat.primitives import serialization

        return signer.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    raise TypeError(f"no key file format for {type(signer).__name__}")


def _sm2_from_der(der: bytes) -> Sm2Signer | None:
    """The SM2 key a PKCS#8 DER holds, when it has exactly OpenSSL's layout; None otherwise."""
    if len(der) != _SM2_PKCS8_LENGTH or not der.startswith(_SM2_PKCS8_HEAD):
        return None
    private_at = len(_SM2_PKCS8_HEAD)
    middle_at = private_at + 32
    if der[middle_at:middle_at + len(_SM2_PKCS8_MIDDLE)] != _SM2_PKCS8_MIDDLE:
        return None
    try:
        signer = Sm2Signer(int.from_bytes(der[private_at:middle_at], "big"))
    except ValueError:
        return None
    if signer.public_key.raw != der[middle_at + len(_SM2_PKCS8_MIDDLE):]:
        return None  # the stored public point is not the private key's: a damaged file
    return signer


def load_signer_pem(pem: bytes, path: Path) -> Signer:
    """The signer a key file holds; ConfigError naming ``path`` when it holds none we use."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    lines = pem.strip().splitlines()
    if len(lines) >= 3 and lines[0].strip() == _PEM_BEGIN and lines[-1].strip() == _PEM_END:
        try:
            der = base64.b64decode(b"".join(line.strip() for line in lines[1:-1]), validate=True)
        except (binascii.Error, ValueError):
            der = b""
        sm2 = _sm2_from_der(der)
        if sm2 is not None:
            return sm2
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            _("{path} is not a usable policy signing key ({reason}): it should be an Ed25519 "
              "or SM2 private key in PKCS#8 PEM").format(path=path, reason=exc)) from None
    except UnsupportedAlgorithm:
        raise ConfigError(_("{path} is not an Ed25519 or SM2 private key: its algorithm is not "
                            "supported").format(path=path)) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(_("{path} is not an Ed25519 or SM2 private key ({kind})")
                          .format(path=path, kind=type(key).__name__))
    return Ed25519Signer(key)


def ensure_signing_key(data_dir: Path, algorithm: str = DEFAULT_ALGORITHM) -> bool:
    """Make a key of ``algorithm`` when there is none; True when made. Never replaces a key."""
    path = key_path(data_dir)
    if path.exists():
        return False
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    pem = signer_pem(generate_signer(algorithm))
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False  # another init made it meanwhile
    try:
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


def load_signing_key(data_dir: Path) -> Signer:
    path = key_path(data_dir)
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            _("{path} does not exist: run `courtguard-collector init` (it keeps existing TLS "
              "files and keys and makes only what is missing)").format(path=path)) from None
    except OSError as exc:
        raise ConfigError(_("{path} cannot be read: {reason}; run as the collector's user")
                          .format(path=path, reason=exc.strerror)) from exc
    if path.stat().st_mode & 0o077:
        raise ConfigError(_("{path} is readable by others: chmod 600 {path}").format(path=path))
    return load_signer_pem(pem, path)


def register_public_key(db: Database, public_key: str) -> None:
    """Record the signing key's public half; refuse a second, different key."""
    with db.write() as conn:
        known = conn.execute(select(policy_keys.c.public_key)).scalars().all()
        if not known:
            # Two publishers of one collector can both find the table empty (PostgreSQL);
            # the second insert of the same key is then a no-op, not a failed publish.
            module: Any = postgresql if db.dialect == "postgresql" else sqlite
            conn.execute(module.insert(policy_keys)
                         .values(public_key=public_key, created_at=utcnow())
                         .on_conflict_do_nothing(index_elements=["public_key"]))
            return
    if public_key not in known:
        raise ConfigError(
            _("this collector's policy signing key differs from the one the store already uses "
              "({key}…): agents pinned that one. Copy {file} from the collector that made it "
              "into this data_dir (mode 0600)").format(key=known[0][:12], file=KEY_FILE))


def prepare_signing_key(
    data_dir: Path, db: Database, algorithm: str | None = None
) -> tuple[bool, str]:
    """For ``init``: make the key if none exists anywhere; (made, public key text).

    ``algorithm`` is the one asked for (None: keep the existing key's, or
    Ed25519 for a new one). An existing key is never replaced, and asking for
    another algorithm than it has is refused: agents pinned its algorithm.
    When the store already knows a key but this data_dir has none, no new key
    is made: agents pinned the old one, so it must be copied here.
    """
    if algorithm is not None and algorithm not in ALGORITHMS:
        raise ConfigError(_("unknown signature algorithm {algorithm!r}: choose one of {known}")
                          .format(algorithm=algorithm, known=_(", ").join(ALGORITHMS)))
    if key_path(data_dir).exists():
        existing = load_signing_key(data_dir).public_key.algorithm
        if algorithm is not None and algorithm != existing:
            raise ConfigError(
                _("{path} holds a signing key of algorithm {existing} already and cannot become "
                  "{algorithm}: agents pinned the algorithm and the public key at enrollment. The "
                  "algorithm is chosen only at the collector's first init; to change it, deploy "
                  "again with a new data directory and database and enroll every agent again")
                .format(path=key_path(data_dir), existing=existing, algorithm=algorithm))
    else:
        with db.read() as conn:
            known = conn.execute(select(policy_keys.c.public_key)).scalars().first()
        if known is not None:
            raise ConfigError(
                _("{path} is missing but the store's bundles are signed with key {key}…, which "
                  "agents pinned. Copy {file} from the collector that made it into this data_dir "
                  "(mode 0600)").format(path=key_path(data_dir), key=known[:12], file=KEY_FILE))
    made = ensure_signing_key(data_dir, algorithm or DEFAULT_ALGORITHM)
    public = load_signing_key(data_dir).public_key.text
    register_public_key(db, public)
    return made, public


def verifying_public_key(data_dir: Path) -> str | None:
    """The key file's public half as policy-key text (``PublicKey.text``); None without a file.

    Stored bundles are verified with it, with its algorithm.

    Taken from the file, never from the store: a row or ``policy_keys`` can be
    edited by whoever writes the database, the key file only by the collector's user.
    """
    if not key_path(data_dir).exists():
        return None
    return load_signing_key(data_dir).public_key.text


def signature_algorithm(public_key: str) -> str:
    """The algorithm a policy-key text names (what ``X-Courtguard-Signature-Algorithm`` says)."""
    return PublicKey.parse(public_key).algorithm


def serving_public_key(data_dir: Path, db: Database) -> str | None:
    """The public key enrollment hands out, checked against the store; None without a key."""
    public = verifying_public_key(data_dir)
    if public is not None:
        register_public_key(db, public)
    return public
