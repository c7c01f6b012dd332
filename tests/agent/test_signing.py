"""agent/signing.py: the standards' test vectors, and every way a signature must fail.

SM3 against the two examples of GB/T 32905-2016 (Appendix A: "abc", and the
512-bit message "abcd" x 16); SM2 against the signature example on the
recommended curve of GB/T 32918 (the key pair, ZA, e, k, r and s given for
the message "message digest" and the default user ID 1234567812345678, as
GM/T 0003.5 and GB/T 32918.5 print it); and an independent check: OpenSSL's
own SM2 verifies a signature made here.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pysmx.SM2 import Sign

from agent.signing import (
    SM2_N,
    SM2_PREFIX,
    Ed25519Signer,
    PublicKey,
    SignatureMismatch,
    Signer,
    Sm2Signer,
    der_signature,
    generate_signer,
    sm2_message_digest,
    sm3_digest,
)

# GB/T 32918 signature example, recommended curve (all hex, big-endian).
VECTOR_D = "3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8"
VECTOR_X = "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
VECTOR_Y = "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13"
VECTOR_ZA = "B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3"
VECTOR_E = "F0B43E94BA45ACCAACE692ED534382EB17E6AB5A19CE7B31F4486FDFC0D28640"
VECTOR_K = "59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21"
VECTOR_R = "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
VECTOR_S = "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA"
MESSAGE = b"message digest"


def vector_key() -> PublicKey:
    return PublicKey("sm2", bytes.fromhex(VECTOR_X + VECTOR_Y))


def vector_signature() -> str:
    return base64.b64encode(bytes.fromhex(VECTOR_R + VECTOR_S)).decode()


def test_sm3_matches_gb_t_32905_examples() -> None:
    assert sm3_digest(b"abc").hex() == (
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0")
    assert sm3_digest(b"abcd" * 16).hex() == (
        "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732")


def test_sm2_key_pair_and_digest_match_the_standard() -> None:
    """The private key gives the standard's public key; ZA and e are the standard's."""
    signer = Sm2Signer(int(VECTOR_D, 16))
    assert signer.public_key == vector_key()
    from pysmx.SM2 import get_za

    assert get_za(b"1234567812345678", VECTOR_X + VECTOR_Y).upper() == VECTOR_ZA
    assert sm2_message_digest(vector_key().raw, MESSAGE).hex().upper() == VECTOR_E


def test_sm2_signature_matches_the_standard() -> None:
    """With the standard's k, the library signs e into the standard's (r, s), and the
    verifier accepts that (r, s) over the message and refuses it over any other."""
    signature = Sign(VECTOR_E, VECTOR_D, VECTOR_K, 64, Hexstr=1)
    assert signature.hex().upper() == VECTOR_R + VECTOR_S
    vector_key().verify(MESSAGE, vector_signature())
    with pytest.raises(SignatureMismatch):
        vector_key().verify(b"message digesT", vector_signature())


@pytest.mark.parametrize("algorithm", ["ed25519", "sm2"])
def test_round_trip_and_tamper(algorithm: str) -> None:
    """A signature verifies over exactly the bytes signed; one changed byte, either side, fails."""
    signer = generate_signer(algorithm)
    body = b'{"format":"courtguard-policy-bundle/1","version":3}'
    signature = signer.sign(body)
    key = PublicKey.parse(signer.public_key.text)
    assert key == signer.public_key and key.algorithm == algorithm
    key.verify(body, signature)
    for index in (0, len(body) // 2, len(body) - 1):
        changed = bytearray(body)
        changed[index] ^= 1
        with pytest.raises(SignatureMismatch):
            key.verify(bytes(changed), signature)
    raw = bytearray(base64.b64decode(signature))
    raw[10] ^= 1
    with pytest.raises(SignatureMismatch):
        key.verify(body, base64.b64encode(bytes(raw)).decode())


@pytest.mark.parametrize("algorithm", ["ed25519", "sm2"])
def test_wrong_key_fails(algorithm: str) -> None:
    body = b"bundle"
    signature = generate_signer(algorithm).sign(body)
    with pytest.raises(SignatureMismatch):
        generate_signer(algorithm).public_key.verify(body, signature)


def test_the_other_algorithms_signature_never_verifies() -> None:
    """Both signatures are 64 bytes: each is tried only as the pinned key's algorithm."""
    body = b"bundle"
    ed25519, sm2 = Ed25519Signer(), Sm2Signer()
    with pytest.raises(SignatureMismatch, match="pinned sm2 key"):
        sm2.public_key.verify(body, ed25519.sign(body))
    with pytest.raises(SignatureMismatch, match="pinned ed25519 key"):
        ed25519.public_key.verify(body, sm2.sign(body))


def test_sm2_signature_out_of_range_is_refused() -> None:
    """r and s must lie in [1, n-1] (GB/T 32918.2 steps B1, B2)."""
    r, s = int(VECTOR_R, 16), int(VECTOR_S, 16)
    out_of_range = (0, SM2_N, (1 << 256) - 1)
    for bad_r, bad_s in [(bad, s) for bad in out_of_range] + [(r, bad) for bad in out_of_range]:
        raw = bad_r.to_bytes(32, "big") + bad_s.to_bytes(32, "big")
        with pytest.raises(SignatureMismatch):
            vector_key().verify(MESSAGE, base64.b64encode(raw).decode())


@pytest.mark.parametrize("text, reason", [
    (SM2_PREFIX + base64.b64encode(b"\x04" + bytes(64)).decode(), "not a point"),
    (SM2_PREFIX + base64.b64encode(b"\x02" + bytes(32)).decode(), "not an uncompressed"),
    (SM2_PREFIX + "not base64!", "not base64"),
    (base64.b64encode(bytes(31)).decode(), "not 32"),
    ("", "not 32"),
])
def test_unusable_key_text_is_refused(text: str, reason: str) -> None:
    with pytest.raises(SignatureMismatch, match=reason):
        PublicKey.parse(text)


@pytest.mark.parametrize("signature", ["", "not base64!", base64.b64encode(bytes(63)).decode()])
def test_malformed_signature_is_refused(signature: str) -> None:
    with pytest.raises(SignatureMismatch):
        vector_key().verify(MESSAGE, signature)


@settings(max_examples=40, deadline=None)
@given(st.binary(min_size=64, max_size=64), st.binary(max_size=64))
def test_arbitrary_signatures_are_refused_never_crash(raw: bytes, body: bytes) -> None:
    """Whatever 64 bytes arrive as an SM2 signature over whatever body, the answer is a
    refusal (SignatureMismatch), never another exception."""
    with pytest.raises(SignatureMismatch):
        vector_key().verify(body, base64.b64encode(raw).decode())


def openssl() -> str:
    found = shutil.which("openssl")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("the openssl command is required on CI (scripts/test.sh installs it)")
        pytest.skip("the openssl command is not installed")
    return found


def spki_pem(key: PublicKey) -> bytes:
    """SubjectPublicKeyInfo of an SM2 key (id-ecPublicKey, SM2 curve), as OpenSSL reads it."""
    der = bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d034200") + b"\x04" + key.raw
    return b"-----BEGIN PUBLIC KEY-----\n" + base64.encodebytes(der) + b"-----END PUBLIC KEY-----\n"


def test_openssl_verifies_our_sm2_signature(tmp_path: Path) -> None:
    """An independent implementation agrees: OpenSSL verifies an SM2 signature made here (and
    refuses it over a changed message), with the default user ID named explicitly."""
    binary = openssl()
    signer: Signer = Sm2Signer()
    body = "策略包 policy bundle".encode() * 100
    (tmp_path / "pub.pem").write_bytes(spki_pem(signer.public_key))
    (tmp_path / "sig.der").write_bytes(der_signature(signer.sign(body)))
    (tmp_path / "body").write_bytes(body)
    (tmp_path / "changed").write_bytes(body[:-1] + b"!")

    def verify(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [binary, "pkeyutl", "-verify", "-pubin", "-inkey", str(tmp_path / "pub.pem"),
             "-rawin", "-digest", "sm3", "-pkeyopt", "distid:1234567812345678",
             "-in", str(tmp_path / name), "-sigfile", str(tmp_path / "sig.der")],
            capture_output=True, text=True, timeout=30, check=False)

    good = verify("body")
    assert good.returncode == 0 and "Verified Successfully" in good.stdout, good.stderr
    assert verify("changed").returncode != 0
