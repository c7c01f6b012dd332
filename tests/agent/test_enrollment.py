"""Enrollment: credentials stored privately, the CA pinned, refusals explained."""

from __future__ import annotations

import datetime as dt
import json
import ssl
import stat
from pathlib import Path

import pytest

from agent.enrollment import (
    Credentials,
    ca_path,
    credentials_path,
    enroll,
    load_credentials,
    ssl_context,
)
from agent.errors import ConfigError, EnrollmentError, NotEnrolledError
from agent.events import EnrollRequest
from agent.settings import AgentSettings
from agent.testing import FakeCollector

TOKEN = "enroll-token-0123456789"  # noqa: S105 (a made-up test token)


def make_ca(path: Path) -> Path:
    """Write a self-signed CA certificate (PEM) to path."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "courtguard test CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_enroll_stores_private_credentials(
    settings: AgentSettings, collector: FakeCollector
) -> None:
    """Enrollment writes credentials.json 0600 in a 0700 data dir, with what the collector sent."""
    credentials = enroll(
        "http://collector.test/", TOKEN, None, settings, transport=collector.transport()
    )
    path = credentials_path(settings.data_dir)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(settings.data_dir.stat().st_mode) == 0o700
    stored = json.loads(path.read_text())
    assert stored["agent_id"] == str(collector.agent_id) and stored["secret"] == collector.secret
    assert stored["collector_url"] == "http://collector.test"
    assert {"group", "enrolled_at"} <= stored.keys()
    assert load_credentials(settings.data_dir) == credentials


def test_enroll_sends_token_and_host(settings: AgentSettings, collector: FakeCollector) -> None:
    """The enroll request carries the token, the host name and the agent version."""
    enroll("http://collector.test", TOKEN, None, settings, transport=collector.transport())
    request = EnrollRequest.model_validate_json(collector.requests[0].content)
    assert request.token == TOKEN and request.hostname == "ws-test"


def test_enroll_over_https_copies_the_ca(
    make_settings: type[AgentSettings], collector: FakeCollector, tmp_path: Path
) -> None:
    """An https enrollment keeps a copy of the CA file next to the credentials."""
    ca = make_ca(tmp_path / "ca.pem")
    settings = make_settings(allow_plain_http=False)
    enroll("https://collector.test", TOKEN, ca, settings, transport=collector.transport())
    assert ca_path(settings.data_dir).read_bytes() == ca.read_bytes()


def test_pinned_context_trusts_only_the_collector_ca(tmp_path: Path) -> None:
    """The TLS context holds exactly the collector's CA and checks host names."""
    context = ssl_context(make_ca(tmp_path / "ca.pem"))
    assert len(context.get_ca_certs()) == 1
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED


def test_https_without_ca_is_refused(
    make_settings: type[AgentSettings], collector: FakeCollector
) -> None:
    """Enrolling over https without --ca fails before any request."""
    with pytest.raises(ConfigError, match="--ca"):
        enroll(
            "https://collector.test", TOKEN, None, make_settings(), transport=collector.transport()
        )
    assert collector.requests == []


def test_plain_http_is_refused_unless_allowed(
    make_settings: type[AgentSettings], collector: FakeCollector
) -> None:
    """http:// needs allow_plain_http; without it nothing is sent."""
    settings = make_settings(allow_plain_http=False)
    with pytest.raises(ConfigError, match="allow_plain_http"):
        enroll("http://collector.test", TOKEN, None, settings, transport=collector.transport())
    assert collector.requests == []


@pytest.mark.parametrize(
    ("error", "advice"),
    [
        ("invalid_token", "check it for typos"),
        ("token_expired", "expired"),
        ("token_exhausted", "used up"),
        ("token_revoked", "revoked"),
    ],
)
def test_refused_tokens_are_explained(
    settings: AgentSettings, collector: FakeCollector, error: str, advice: str
) -> None:
    """Each 401 token error becomes an EnrollmentError saying what to do."""
    collector.then(401, error=error, detail="no")
    with pytest.raises(EnrollmentError, match=advice):
        enroll("http://collector.test", TOKEN, None, settings, transport=collector.transport())
    assert not credentials_path(settings.data_dir).exists()


def test_not_enrolled_names_the_command(tmp_path: Path) -> None:
    """Loading credentials that do not exist says how to enroll."""
    with pytest.raises(NotEnrolledError, match="courtguard-agent enroll"):
        load_credentials(tmp_path)


def test_credentials_repr_hides_the_secret(
    settings: AgentSettings, collector: FakeCollector
) -> None:
    """Printing credentials never shows the secret."""
    credentials: Credentials = enroll(
        "http://collector.test", TOKEN, None, settings, transport=collector.transport()
    )
    assert collector.secret not in repr(credentials) and collector.secret not in str(credentials)


def test_enroll_pins_the_sm2_policy_key(settings: AgentSettings, collector: FakeCollector) -> None:
    """An SM2 collector's key is pinned as given: algorithm and key in one text."""
    from agent.testing import PolicySigner

    collector.policy_key = PolicySigner("sm2").public_key
    credentials = enroll("http://collector.test", TOKEN, None, settings,
                         transport=collector.transport())
    assert credentials.policy_key == collector.policy_key
    pinned = load_credentials(settings.data_dir).policy_key
    assert pinned is not None and pinned.startswith("sm2:")


@pytest.mark.parametrize("policy_key", ["sm2:" + "A" * 88, "not base64!", "QUJD"])
def test_enroll_refuses_a_policy_key_it_cannot_pin(
    settings: AgentSettings, collector: FakeCollector, policy_key: str
) -> None:
    """A key that is no Ed25519 or SM2 key (a point off the curve, garbage) stops enrollment
    before anything is written: the agent would otherwise never verify a bundle."""
    collector.policy_key = policy_key
    with pytest.raises(EnrollmentError, match="cannot be pinned"):
        enroll("http://collector.test", TOKEN, None, settings, transport=collector.transport())
    assert not credentials_path(settings.data_dir).exists()
