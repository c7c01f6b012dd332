"""Enrollment: trade a one-time token for this agent's identity, and keep it on disk.

1. check the collector URL (HTTPS with a CA file, or plain HTTP only when
   ``allow_plain_http`` is set);
2. POST an ``EnrollRequest`` to ``/api/v1/enroll`` with the host fingerprint
   (``agent.host_identity``), trusting only that CA, and check the policy key it
   answers with (algorithm and key, pinned together); the collector may answer that
   this enrollment superseded the host's earlier agent;
3. copy the CA to ``<data_dir>/collector-ca.pem`` and write
   ``<data_dir>/credentials.json`` (mode 0600) atomically, in that order, so
   credentials never point at a missing CA.
"""

from __future__ import annotations

import json
import os
import platform
import ssl
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, ValidationError

from agent.errors import CollectorUnreachable, ConfigError, EnrollmentError, NotEnrolledError
from agent.events import EnrollRequest, EnrollResponse, ErrorBody
from agent.host_identity import host_fingerprint
from agent.messages import _
from agent.version import __version__

if TYPE_CHECKING:
    import httpx

    from agent.settings import AgentSettings

CREDENTIALS_FILE: Final = "credentials.json"
CA_FILE: Final = "collector-ca.pem"

#: Shortest and longest enrollment token the collector accepts (EnrollRequest).
TOKEN_LENGTHS: Final = (8, 200)


def _token_error(code: str) -> str | None:
    return {
        "invalid_token": _("the collector does not know this enrollment token; "
                           "check it for typos"),
        "token_expired": _("the enrollment token has expired; "
                           "ask the security team for a new one"),
        "token_exhausted": _("the enrollment token has been used up; "
                             "ask the security team for a new one"),
        "token_revoked": _("the enrollment token was revoked; "
                           "ask the security team for a new one"),
    }.get(code)


def _ssl_failure(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error under an httpx error, if the failure was TLS rather than the network."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _unreachable(url: str, ca_file: Path | None, exc: Exception) -> EnrollmentError:
    tls = _ssl_failure(exc)
    if isinstance(tls, ssl.SSLCertVerificationError):
        return EnrollmentError(
            _("the collector at {url} presented a certificate that {ca} did not sign, "
              "or that is not for this address ({reason})").format(
                url=url, ca=ca_file, reason=tls.verify_message or tls.reason),
            hint=_("use the CA of this collector: tls/ca.pem in its data directory; and a URL "
                   "with a name the certificate carries (`courtguard-collector init --san`)"),
        )
    if tls is not None:
        return EnrollmentError(
            _("TLS with the collector at {url} failed: {reason}").format(
                url=url, reason=tls.reason or tls),
            hint=_("check that the collector listens with https on that port"),
        )
    return CollectorUnreachable(
        _("cannot reach the collector at {url}: {reason}").format(url=url, reason=exc),
        hint=_("check the address and port, that the collector runs (systemctl status "
               "courtguard-collector) and that the firewall lets this workstation through"),
    )


class Credentials(BaseModel):
    """What enrollment leaves in ``credentials.json``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    collector_url: str
    agent_id: uuid.UUID
    secret: str
    group: str
    enrolled_at: datetime
    #: The collector's policy key, pinned at enrollment: its algorithm and public key in
    #: one text (``agent.signing.PublicKey``: base64 for Ed25519, ``sm2:…`` for SM2).
    #: Every bundle is verified with exactly this algorithm and key. None from a
    #: collector without one, and then no bundle is ever applied.
    policy_key: str | None = None

    def __repr__(self) -> str:  # the secret must not end up in a log line or traceback
        return f"Credentials(agent_id={self.agent_id}, collector_url={self.collector_url!r})"

    __str__ = __repr__

    @property
    def authorization(self) -> str:
        return f"Bearer {self.agent_id}:{self.secret}"


def check_collector_url(url: str, allow_plain_http: bool) -> str:
    """The URL without a trailing slash; ConfigError unless it is https (or http when allowed)."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ConfigError(
            _("collector URL {url!r} must look like https://collector.example:8443").format(
                url=url))
    if parts.scheme == "http" and not allow_plain_http:
        raise ConfigError(
            _("collector URL {url} is plain http: events would cross the network unencrypted. "
              "Use https, or set allow_plain_http = true in agent.toml for a closed test "
              "network").format(url=url)
        )
    return url.rstrip("/")


def ssl_context(ca_file: Path) -> ssl.SSLContext:
    """A TLS context that trusts only the collector's CA, never the system store."""
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except FileNotFoundError:
        raise ConfigError(
            _("collector CA file {path} does not exist").format(path=ca_file),
            hint=_("copy tls/ca.pem from the collector's data directory to this workstation "
                   "and name it with --ca"),
        ) from None
    except ssl.SSLError as exc:  # before OSError, which it is a kind of
        raise ConfigError(
            _("collector CA file {path} is not a PEM certificate ({reason})").format(
                path=ca_file, reason=exc.reason or exc),
            hint=_("use tls/ca.pem from the collector's data directory; it begins with "
                   "-----BEGIN CERTIFICATE-----"),
        ) from exc
    except OSError as exc:
        raise ConfigError(
            _("collector CA file {path} cannot be read: {reason}").format(
                path=ca_file, reason=exc.strerror),
            hint=_("run it as root (sudo), or make the file readable to this user"),
        ) from exc


def credentials_path(data_dir: Path) -> Path:
    return data_dir / CREDENTIALS_FILE


def ca_path(data_dir: Path) -> Path:
    return data_dir / CA_FILE


def load_credentials(data_dir: Path) -> Credentials:
    """The stored credentials; NotEnrolledError when the agent was never enrolled."""
    path = credentials_path(data_dir)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise NotEnrolledError(
            _("this agent is not enrolled ({path} does not exist); run "
              "`courtguard-agent enroll --collector https://COLLECTOR --token TOKEN --ca CA.pem`")
            .format(path=path)
        ) from None
    except OSError as exc:
        raise NotEnrolledError(
            _("{path} cannot be read: {reason}; run as root").format(
                path=path, reason=exc.strerror)
        ) from exc
    try:
        return Credentials.model_validate_json(raw)
    except ValidationError as exc:
        raise NotEnrolledError(
            f"{path} is damaged ({exc.error_count()} problems); enroll again with a new token"
        ) from exc


def write_private(path: Path, data: bytes) -> None:
    """Write a file readable by its owner only, atomically (temp file, fsync, rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _refusal(response: httpx.Response) -> str:
    try:
        body = ErrorBody.model_validate_json(response.content)
    except ValidationError:
        return f"HTTP {response.status_code}"
    return _token_error(body.error) or f"{body.error}: {body.detail}"


def enroll(
    collector_url: str,
    token: str,
    ca_file: Path | None,
    settings: AgentSettings,
    *,
    transport: Any = None,
) -> Credentials:
    """Enroll with the collector and store the identity it hands out; see the module docstring."""
    import httpx

    # 1. Check the URL and the CA before any byte leaves the host.
    url = check_collector_url(collector_url, settings.allow_plain_http)
    verify: ssl.SSLContext | bool = False
    if not TOKEN_LENGTHS[0] <= len(token.strip()) <= TOKEN_LENGTHS[1]:
        raise ConfigError(
            _("the enrollment token is {length} characters long; a token has {low} to {high}")
            .format(length=len(token.strip()), low=TOKEN_LENGTHS[0], high=TOKEN_LENGTHS[1]),
            hint=_("copy the whole token `courtguard-collector token create` printed"),
        )
    token = token.strip()
    if url.startswith("https://"):
        if ca_file is None:
            raise ConfigError(
                _("an https collector needs --ca FILE: the CA that signed its cert"))
        verify = ssl_context(ca_file)
    request = EnrollRequest(
        token=token,
        hostname=settings.hostname,
        agent_version=__version__,
        os=platform.platform()[:200],
        host_fingerprint=host_fingerprint(settings.hostname, settings.identity_sysfs),
    )
    # 2. Ask the collector.
    try:
        with httpx.Client(
            verify=verify, transport=transport, timeout=settings.http_timeout_s
        ) as client:
            response = client.post(
                f"{url}/api/v1/enroll",
                content=request.model_dump_json(),
                headers={"Content-Type": "application/json"},
            )
    except httpx.HTTPError as exc:
        raise _unreachable(url, ca_file, exc) from exc
    if response.status_code in (429, 502, 503, 504):
        raise CollectorUnreachable(
            _("the collector at {url} is busy or restarting (HTTP {status})").format(
                url=url, status=response.status_code),
            hint=_("enrollment is tried again later; nothing needs to be done"),
        )
    if response.status_code != 201:
        raise EnrollmentError(
            _("the collector refused enrollment: {reason}").format(reason=_refusal(response)))
    try:
        answer = EnrollResponse.model_validate_json(response.content)
    except ValidationError as exc:
        raise EnrollmentError(_("the collector's answer to enrollment is malformed: {reason}")
                              .format(reason=exc)) from exc
    if answer.policy_key is not None:
        from agent.signing import PublicKey, SignatureMismatch

        try:
            PublicKey.parse(answer.policy_key)
        except SignatureMismatch as exc:
            raise EnrollmentError(
                f"the collector's policy signing key cannot be pinned: {exc.reason}; "
                "upgrade this agent to one that knows the collector's signature algorithm"
            ) from None
    # 3. Keep the CA, then the credentials that rely on it.
    data_dir = settings.data_dir
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    if ca_file is not None:
        write_private(ca_path(data_dir), ca_file.read_bytes())
    elif ca_path(data_dir).exists():
        ca_path(data_dir).unlink()  # a stale CA from an earlier https enrollment
    credentials = Credentials(
        collector_url=url,
        agent_id=answer.agent_id,
        secret=answer.secret,
        group=answer.group,
        enrolled_at=datetime.now(UTC),
        policy_key=answer.policy_key,
    )
    save_credentials(data_dir, credentials)
    return credentials


def save_credentials(data_dir: Path, credentials: Credentials) -> None:
    """Write the credentials file, readable by the agent's user only."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private(
        credentials_path(data_dir),
        json.dumps(credentials.model_dump(mode="json"), indent=2).encode(),
    )
