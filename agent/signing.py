"""Signature algorithms for everything the collector signs and agents verify.

Two algorithms, chosen once per collector at ``init``:

* ``ed25519`` (the default): RFC 8032, through ``cryptography``;
* ``sm2``: the SM2 digital signature of GB/T 32918.2 with the SM3 digest of
  GB/T 32905 (国密), for courts whose 密评 asks for SM algorithms. The curve
  arithmetic is the ``snowland-smx`` library's (``pysmx``); SM3 is OpenSSL's,
  through ``cryptography``. A signature covers ``e = SM3(ZA || M)`` where
  ``ZA`` binds the signer's public key and the default user ID
  ``1234567812345678`` (GB/T 35276), exactly as other SM2 implementations
  (GmSSL, Tongsuo, OpenSSL 3) sign and verify by default.

A public key travels as one piece of text that names its algorithm, the
"policy key": Ed25519 as bare base64 of its 32 raw bytes (what every collector
has handed out since enrollment began, so existing credentials stay valid),
SM2 as ``sm2:`` followed by base64 of the 65-byte uncompressed point
``04 || x || y``. An agent pins that text at enrollment and verifies every
signature with that algorithm and key only; a signature made with another
algorithm or key never verifies, whatever the sender claims.

Signatures are base64: Ed25519's 64 bytes, SM2's ``r || s`` as two 32-byte
big-endian integers (64 bytes; ``der_signature`` gives the DER form other
tools expect). A signed object of any kind (policy bundles today; agent
releases and isolation orders later) uses ``Signer.sign`` on the collector
and ``PublicKey.verify`` on the agent over its exact bytes, before parsing
them; docs/policy.md says how.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass
from typing import Final, Literal, Protocol, get_args

SignatureAlgorithm = Literal["ed25519", "sm2"]
ALGORITHMS: Final[tuple[str, ...]] = get_args(SignatureAlgorithm)
DEFAULT_ALGORITHM: Final = "ed25519"

#: The user ID GB/T 35276 names as the default, which ZA is computed over.
SM2_DEFAULT_ID: Final = b"1234567812345678"
SM2_PREFIX: Final = "sm2:"

# The SM2 recommended curve (GB/T 32918.5): what a received key and signature are checked against.
SM2_P: Final = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF", 16)
SM2_A: Final = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC", 16)
SM2_B: Final = int("28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93", 16)
SM2_N: Final = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123", 16)

_SIGNATURE_BYTES: Final = 64


class SignatureMismatch(Exception):
    """A signature, or the key or algorithm it claims, fails; ``reason`` says which (English)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _decode_b64(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureMismatch(f"the {what} is not base64") from None


def sm3_digest(data: bytes) -> bytes:
    """SM3 (GB/T 32905) of ``data``, 32 bytes, computed by OpenSSL."""
    from cryptography.hazmat.primitives import hashes

    digest = hashes.Hash(hashes.SM3())
    digest.update(data)
    return digest.finalize()


def sm2_on_curve(point: bytes) -> bool:
    """Whether 64 bytes ``x || y`` are a point of the SM2 curve (a key an attacker cannot pick)."""
    x = int.from_bytes(point[:32], "big")
    y = int.from_bytes(point[32:], "big")
    if not (x < SM2_P and y < SM2_P):
        return False
    return (y * y - (x * x * x + SM2_A * x + SM2_B)) % SM2_P == 0


def sm2_message_digest(point: bytes, message: bytes, user_id: bytes = SM2_DEFAULT_ID) -> bytes:
    """``e = SM3(ZA || M)`` of GB/T 32918.2, with ZA from ``user_id`` and the key ``x || y``."""
    from pysmx.SM2 import get_za

    za = bytes.fromhex(get_za(user_id, point.hex()))
    return sm3_digest(za + message)


@dataclass(frozen=True)
class PublicKey:
    """A verifying key and its algorithm; ``text`` is how it is pinned, stored and sent."""

    algorithm: SignatureAlgorithm
    #: Ed25519: the 32 raw bytes; SM2: ``x || y`` (64 bytes, without the 04 prefix).
    raw: bytes

    @classmethod
    def parse(cls, text: str) -> PublicKey:
        """The key a policy-key text names; SignatureMismatch when it is not one."""
        if text.startswith(SM2_PREFIX):
            raw = _decode_b64(text.removeprefix(SM2_PREFIX), "pinned SM2 key")
            if len(raw) != 65 or raw[0] != 4:
                raise SignatureMismatch(
                    f"the pinned SM2 key is {len(raw)} bytes, not an uncompressed 65-byte point")
            if not sm2_on_curve(raw[1:]):
                raise SignatureMismatch("the pinned SM2 key is not a point of the SM2 curve")
            return cls("sm2", raw[1:])
        raw = _decode_b64(text, "pinned Ed25519 key")
        if len(raw) != 32:
            raise SignatureMismatch(f"the pinned Ed25519 key is {len(raw)} bytes, not 32")
        return cls("ed25519", raw)

    @property
    def text(self) -> str:
        if self.algorithm == "sm2":
            return SM2_PREFIX + base64.b64encode(b"\x04" + self.raw).decode()
        return base64.b64encode(self.raw).decode()

    def verify(self, body: bytes, signature_b64: str) -> None:
        """Return when ``signature_b64`` signs exactly ``body`` with this key, else raise."""
        signature = _decode_b64(signature_b64, "signature")
        if len(signature) != _SIGNATURE_BYTES:
            raise SignatureMismatch(
                f"the signature is {len(signature)} bytes, not {_SIGNATURE_BYTES}")
        if self.algorithm == "sm2":
            good = _sm2_verify(self.raw, body, signature)
        else:
            good = _ed25519_verify(self.raw, body, signature)
        if not good:
            raise SignatureMismatch(
                f"the signature does not verify with the pinned {self.algorithm} key")


def _ed25519_verify(raw: bytes, body: bytes, signature: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(raw).verify(signature, body)
    except InvalidSignature:
        return False
    return True


def _sm2_verify(point: bytes, body: bytes, signature: bytes) -> bool:
    from pysmx.SM2 import Verify

    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    if not (0 < r < SM2_N and 0 < s < SM2_N):  # GB/T 32918.2 verification steps B1 and B2
        return False
    e = sm2_message_digest(point, body)
    try:
        return bool(Verify(signature.hex(), e.hex(), point.hex(), 64, Hexstr=1))
    except (ArithmeticError, ValueError, TypeError, IndexError):
        # Input no genuine signer produces (a sum at the point at infinity, say) is a
        # refusal, never a crash of the agent judging it.
        return False


def der_signature(signature_b64: str) -> bytes:
    """An SM2 (or any r || s) signature as the DER ``SEQUENCE {r, s}`` of GB/T 35276."""
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    raw = base64.b64decode(signature_b64)
    return encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))


class Signer(Protocol):
    """A private key of one algorithm: what the collector signs with."""

    @property
    def public_key(self) -> PublicKey: ...

    def sign(self, body: bytes) -> str:
        """Base64 of the signature over exactly ``body``."""
        ...


class Ed25519Signer:
    def __init__(self, key: object | None = None) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        if key is None:
            key = Ed25519PrivateKey.generate()
        if not isinstance(key, Ed25519PrivateKey):
            raise TypeError("an Ed25519Signer needs an Ed25519 private key")
        self.key = key

    @property
    def public_key(self) -> PublicKey:
        from cryptography.hazmat.primitives import serialization

        raw = self.key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return PublicKey("ed25519", raw)

    def sign(self, body: bytes) -> str:
        return base64.b64encode(self.key.sign(body)).decode()


class Sm2Signer:
    """An SM2 private key ``d`` (1 <= d <= n - 2) of the recommended curve."""

    def __init__(self, private: int | None = None) -> None:
        from pysmx.SM2 import kG, sm2_G

        if private is None:
            private = secrets.randbelow(SM2_N - 2) + 1
        if not 0 < private < SM2_N - 1:
            raise ValueError("an SM2 private key lies in [1, n - 2]")
        self.private = private
        self._point = bytes.fromhex(kG(private, sm2_G, 64))

    @property
    def public_key(self) -> PublicKey:
        return PublicKey("sm2", self._point)

    def sign(self, body: bytes) -> str:
        from pysmx.SM2 import Sign

        e = sm2_message_digest(self._point, body).hex()
        while True:
            # Sign rejects the rare nonces that give r = 0 or r + k = n: draw another.
            nonce = secrets.randbelow(SM2_N - 1) + 1
            signature = Sign(e, f"{self.private:064x}", f"{nonce:064x}", 64, Hexstr=1)
            if signature is not None and len(signature) == _SIGNATURE_BYTES:
                return base64.b64encode(signature).decode()


def generate_signer(algorithm: str) -> Signer:
    if algorithm == "sm2":
        return Sm2Signer()
    if algorithm == "ed25519":
        return Ed25519Signer()
    raise ValueError(f"unknown signature algorithm {algorithm!r}")
