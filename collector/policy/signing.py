"""The collector's Ed25519 policy signing key: made by ``init``, read by ``policy publish``.

The private key is ``<data_dir>/policy-signing.key`` (PKCS#8 PEM, mode 0600,
owned by the collector's user); agents pin the public half at enrollment.
Several collector processes must sign with one key: the store remembers the
public half of the first key (``policy_keys``), and a process whose file holds
another key is refused with the instruction to copy the first.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from agent.events import utcnow
from collector.errors import ConfigError
from collector.store.database import Database
from collector.store.tables import policy_keys

KEY_FILE: Final = "policy-signing.key"


def key_path(data_dir: Path) -> Path:
    return data_dir / KEY_FILE


def ensure_signing_key(data_dir: Path) -> bool:
    """Make the key when there is none; True when it was made. Never replaces a key."""
    path = key_path(data_dir)
    if path.exists():
        return False
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
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


def load_signing_key(data_dir: Path) -> Ed25519PrivateKey:
    path = key_path(data_dir)
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{path} does not exist: run `courtguard-collector init` (it keeps existing TLS "
            "files and keys and makes only what is missing)"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"{path} cannot be read: {exc.strerror}; run as the collector's user"
        ) from exc
    if path.stat().st_mode & 0o077:
        raise ConfigError(f"{path} is readable by others: chmod 600 {path}")
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path} is not an Ed25519 private key")
    return key


def public_key_b64(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def sign(key: Ed25519PrivateKey, body: bytes) -> str:
    return base64.b64encode(key.sign(body)).decode()


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
            "this collector's policy signing key differs from the one the store already uses "
            f"({known[0][:12]}…): agents pinned that one. Copy {KEY_FILE} from the collector "
            "that made it into this data_dir (mode 0600)"
        )


def prepare_signing_key(data_dir: Path, db: Database) -> tuple[bool, str]:
    """For ``init``: make the key if none exists anywhere; (made, public key).

    When the store already knows a key but this data_dir has none, no new key
    is made: agents pinned the old one, so it must be copied here.
    """
    if not key_path(data_dir).exists():
        with db.read() as conn:
            known = conn.execute(select(policy_keys.c.public_key)).scalars().first()
        if known is not None:
            raise ConfigError(
                f"{key_path(data_dir)} is missing but the store's bundles are signed with key "
                f"{known[:12]}…, which agents pinned. Copy {KEY_FILE} from the collector that "
                "made it into this data_dir (mode 0600)"
            )
    made = ensure_signing_key(data_dir)
    public = public_key_b64(load_signing_key(data_dir))
    register_public_key(db, public)
    return made, public


def verifying_public_key(data_dir: Path) -> str | None:
    """The public half of the key file, which stored bundles are verified with; None without one.

    Taken from the file, never from the store: a row or ``policy_keys`` can be
    edited by whoever writes the database, the key file only by the collector's user.
    """
    if not key_path(data_dir).exists():
        return None
    return public_key_b64(load_signing_key(data_dir))


def serving_public_key(data_dir: Path, db: Database) -> str | None:
    """The public key enrollment hands out, checked against the store; None without a key."""
    public = verifying_public_key(data_dir)
    if public is not None:
        register_public_key(db, public)
    return public
