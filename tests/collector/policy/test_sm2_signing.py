"""A collector initialised with SM2 (国密): its key file, and every check that Ed25519 has.

``init --signature-algorithm sm2`` makes an SM2 key OpenSSL reads; the store
keeps the algorithm; publish, promote and rollback sign with SM2 and re-verify
stored rows with it; an edited row, or one signed with another key or with
Ed25519 (a downgrade), is never re-signed, acted on or served (SQLite and
PostgreSQL); enrollment hands out the SM2 key and agents verify what is served.
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from agent.policy.bundle import build_bundle_bytes, open_bundle, sha256_hex
from agent.signing import Ed25519Signer, PublicKey, Sm2Signer
from collector.cli import main
from collector.errors import ConfigError
from collector.policy.current import CurrentPolicy
from collector.policy.publish import publish_bundle
from collector.policy.signing import (
    ensure_signing_key,
    key_path,
    load_signing_key,
    verifying_public_key,
)
from collector.settings import CollectorSettings
from collector.store.database import Database
from collector.store.tables import policy_bundles
from tests.agent.test_signing import openssl
from tests.collector.conftest import POLICIES, TestClient, enroll, make_token
from tests.collector.policy.test_policy_store import DOCUMENTS, get_policy
from tests.collector.policy.test_policy_tamper import (
    FORGED_MOBILE,
    GENUINE_MOBILE,
    audit_actions,
    forge,
    mobile,
    rejections,
    versions,
)

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


@pytest.fixture
def cli(settings: CollectorSettings, capsys: pytest.CaptureFixture[str]) -> Any:
    def run(*args: str) -> tuple[int, str, str]:
        code = main([*args, "--data-dir", str(settings.data_dir),
                     "--database-url", settings.database_url])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def sm2_key(settings: CollectorSettings) -> str:
    """An SM2 signing key in the data dir; its policy-key text."""
    assert ensure_signing_key(settings.data_dir, "sm2")
    public = verifying_public_key(settings.data_dir)
    assert public is not None and public.startswith("sm2:")
    return public


def publish(db: Database, settings: CollectorSettings, group: str | None = None) -> Any:
    return publish_bundle(db, DOCUMENTS, load_signing_key(settings.data_dir), group=group,
                          author="tester", note="", created_at=NOW)


# -- init and the key file -------------------------------------------------------


def test_init_with_sm2_keeps_the_algorithm(cli: Any, settings: CollectorSettings) -> None:
    """init --signature-algorithm sm2 makes an SM2 key (0600); init again keeps it; asking for
    Ed25519 then is refused, in the locale's language, and changes nothing."""
    code, out, err = cli("init", "--signature-algorithm", "sm2")
    assert code == 0, err
    path = key_path(settings.data_dir)
    assert "policy signing key: made" in out and "(sm2, mode 0600" in out
    assert path.stat().st_mode & 0o777 == 0o600
    before = path.read_bytes()
    assert load_signing_key(settings.data_dir).public_key.algorithm == "sm2"
    code, out, _ = cli("init")
    assert code == 0 and "policy signing key: kept" in out and "(sm2," in out
    code, out, err = cli("init", "--signature-algorithm", "ed25519")
    assert code == 1, err
    assert "holds a signing key of algorithm sm2 already and cannot become ed25519" in err
    assert "Traceback" not in err
    assert path.read_bytes() == before


def test_sm2_key_file_is_the_openssl_format(tmp_path: Path) -> None:
    """OpenSSL reads the key file as SM2 and derives the same public key; a key OpenSSL made
    (``openssl genpkey -algorithm SM2``) is one ``load_signing_key`` accepts."""
    binary = openssl()
    ensure_signing_key(tmp_path, "sm2")
    ours = load_signing_key(tmp_path)
    shown = subprocess.run([binary, "pkey", "-in", str(key_path(tmp_path)), "-noout", "-text"],
                           capture_output=True, text=True, timeout=30, check=True).stdout
    assert "SM2" in shown
    public_der = subprocess.run(
        [binary, "pkey", "-in", str(key_path(tmp_path)), "-pubout", "-outform", "DER"],
        capture_output=True, timeout=30, check=True).stdout
    assert public_der.endswith(b"\x04" + ours.public_key.raw)

    theirs = tmp_path / "openssl"
    theirs.mkdir(mode=0o700)
    subprocess.run([binary, "genpkey", "-algorithm", "SM2", "-out", str(key_path(theirs))],
                   capture_output=True, timeout=30, check=True)
    key_path(theirs).chmod(0o600)
    signer = load_signing_key(theirs)
    assert signer.public_key.algorithm == "sm2"
    signer.public_key.verify(b"body", signer.sign(b"body"))


def test_a_damaged_sm2_key_file_is_refused_clearly(tmp_path: Path) -> None:
    """A key file whose public point is not its private key's, or that is no key, is refused
    with a message naming the file, never a traceback."""
    ensure_signing_key(tmp_path, "sm2")
    path = key_path(tmp_path)
    lines = path.read_bytes().splitlines()
    der = bytearray(base64.b64decode(b"".join(lines[1:-1])))
    der[-1] ^= 1
    body = base64.encodebytes(bytes(der))
    path.write_bytes(lines[0] + b"\n" + body + lines[-1] + b"\n")
    with pytest.raises(ConfigError, match=r"policy-signing\.key"):
        load_signing_key(tmp_path)
    path.write_bytes(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ConfigError, match=r"policy-signing\.key"):
        load_signing_key(tmp_path)


# -- promote and rollback re-verify with SM2 -------------------------------------


def test_sm2_promote_and_rollback_verify_before_re_signing(cli: Any, db: Database,
                                                           sm2_key: str) -> None:
    """Genuine SM2 rows are promoted and rolled back (each new version verifies with the SM2
    key); an edited row is refused, audited, and no version is made."""
    assert cli("init")[0] == 0
    assert cli("policy", "publish", str(POLICIES), "--group", "canary")[0] == 0
    assert cli("policy", "promote", "1")[0] == 0
    assert cli("policy", "rollback", "1", "--group", "canary")[0] == 0
    assert versions(db) == [1, 2, 3]
    with db.read() as conn:
        keys = set(conn.execute(sa.select(policy_bundles.c.public_key)).scalars())
    assert keys == {sm2_key}
    forge(db, 3, agent_body=False)
    code, out, err = cli("policy", "rollback", "3")
    assert code == 1 and out == "" and "签名与本收集端签名密钥不符" in err
    assert versions(db) == [1, 2, 3]
    assert audit_actions(db)[-1][:2] == ("policy.rollback_refused", "3")
    code, out, _ = cli("policy", "status")
    assert code == 0 and "signature algorithm: SM2 (Chinese national standard, SM3 digest)" in out


# -- what the collector acts on and serves ----------------------------------------


def insert_foreign(db: Database, version: int, signer: Any, *, genuine_body: bytes) -> None:
    """A row signed, validly, by a key that is not the collector's: an attacker's Ed25519 or
    SM2 key, with the edited duty number, its own public key in the row."""
    body = genuine_body.replace(GENUINE_MOBILE.encode(), FORGED_MOBILE.encode()).replace(
        b'"version":1', f'"version":{version}'.encode())
    agent_body = build_bundle_bytes(
        {kind: doc for kind, doc in DOCUMENTS.items() if kind != "alerting"}, version=version,
        group=None, created_at=NOW, author="tester", with_cases=False)
    with db.write() as conn:
        conn.execute(sa.insert(policy_bundles).values(
            version=version, group=None, action="publish", source_version=None, created_at=NOW,
            author="tester", note="", sha256=sha256_hex(body), body=body,
            signature=signer.sign(body), public_key=signer.public_key.text,
            agent_sha256=sha256_hex(agent_body), agent_body=agent_body,
            agent_signature=signer.sign(agent_body)))
        conn.execute(sa.text("UPDATE policy_counter SET value = :v"), {"v": version})


@pytest.mark.parametrize("forger", [Ed25519Signer, Sm2Signer], ids=["ed25519", "other-sm2"])
def test_rows_signed_by_another_key_or_algorithm_are_not_believed(
    db: Database, settings: CollectorSettings, sm2_key: str, forger: Any
) -> None:
    """An SM2 collector neither acts on nor serves a row signed by another SM2 key or by any
    Ed25519 key (a downgrade): it keeps version 1 and reports the row once."""
    genuine = publish(db, settings)
    current = CurrentPolicy(db, None, sm2_key)
    assert mobile(current) == GENUINE_MOBILE
    insert_foreign(db, 2, forger(), genuine_body=genuine.body)
    assert mobile(current) == GENUINE_MOBILE and current.bundle_version == 1
    [event] = rejections(db)
    assert event.evidence["version"] == "2" and event.evidence["reason_code"] == "bad_signature"


@pytest.fixture
def sm2_client(settings: CollectorSettings, db: Database, sm2_key: str) -> Iterator[TestClient]:
    from collector.app import create_app

    fresh = settings.model_copy(update={"policy_refresh_s": 0.0})
    with TestClient(create_app(fresh, db)) as test_client:
        yield test_client


def test_enrolled_agent_pins_sm2_and_verifies_what_is_served(
    sm2_client: TestClient, db: Database, settings: CollectorSettings, sm2_key: str
) -> None:
    """The enrollment answer is the SM2 key; the served bundle names SM2 and verifies with it,
    and not with an Ed25519 key; an edited row is not served."""
    answer = sm2_client.post("/api/v1/enroll", json={
        "token": make_token(db), "hostname": "ws-sm2", "agent_version": "0.1.0"}).json()
    assert answer["policy_key"] == sm2_key and PublicKey.parse(sm2_key).algorithm == "sm2"
    who = enroll(sm2_client, db)
    genuine = publish(db, settings)
    served = get_policy(sm2_client, who)
    assert served.headers["X-Courtguard-Signature-Algorithm"] == "sm2"
    bundle, _ = open_bundle(served.content, served.headers["X-Courtguard-Signature"], sm2_key,
                            group="court-a", applied_version=None, claimed_algorithm="sm2")
    assert bundle.version == 1
    publish(db, settings)
    forge(db, 2, body=False)
    assert get_policy(sm2_client, who).content == genuine.agent_body



def test_a_stored_signature_is_verified_once_and_an_edit_is_still_caught(
    db: Database, settings: CollectorSettings, sm2_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``policy status`` checks every version each time: the SM2 verification of unchanged
    bytes is remembered, and an edited byte is verified afresh and refused."""
    from collector.policy import verification
    from collector.store.policies import get_bundle

    verification._cached_signature_failure.cache_clear()
    calls: list[int] = []
    real = verification._signature_failure

    def counting(body: bytes, signature: str, public_key: str) -> str | None:
        calls.append(len(body))
        return real(body, signature, public_key)

    monkeypatch.setattr(verification, "_signature_failure", counting)
    publish(db, settings)
    for _ in range(3):
        verification.check_stored(get_bundle(db, 1), sm2_key)
    assert len(calls) == 2  # the full body and the agent body, once each
    forge(db, 1, body=False)
    with pytest.raises(verification.BundleUntrusted, match="代理策略包的签名"):
        verification.check_stored(get_bundle(db, 1), sm2_key)
    assert len(calls) == 3
