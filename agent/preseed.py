"""Preseeded enrollment: the first ``run`` on a fresh workstation enrolls by itself.

The package (or the administrator) leaves ``/etc/courtguard/enroll.toml`` (``enroll_file``),
mode 0600, owned by root::

    collector_url = "https://collector.court.example:8443"
    ca_file = "/etc/courtguard/collector-ca.pem"   # or: ca_pem = \"\"\"-----BEGIN ...\"\"\"
    token = "cg_enroll_..."                         # a multi-use group token
    group = "civil-division"                        # optional: the group the token should give
    note = "2026 rollout, building B"               # optional: for the administrator only

When ``run`` starts without credentials and the file exists:

1. read and check it (owner and mode, keys; a problem is a ConfigError naming the key);
2. enroll (``agent.enrollment.enroll``); while the collector is unreachable or busy, log it
   and try again with exponential backoff and jitter, telling systemd to wait;
3. a refusal (wrong, expired or used-up token) is logged once with its hint, then the agent
   waits for the file to change instead of asking again: the same token would be refused
   again, and a hot loop would fill the collector's log;
4. then the daemon starts as after a manual ``enroll``.

The token stays in the file: a re-imaged host that is preseeded again enrolls again and
supersedes its earlier identity. Revoke the token (``courtguard-collector token revoke``) once
the rollout is done.
"""

from __future__ import annotations

import os
import random
import stat
import tempfile
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

import structlog
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError, model_validator

from agent import systemd
from agent.enrollment import Credentials, credentials_path, enroll
from agent.errors import CollectorUnreachable, ConfigError, EnrollmentError
from agent.messages import _

if TYPE_CHECKING:
    from agent.settings import AgentSettings

log = structlog.get_logger("agent.preseed")

#: How often a refused preseed file is looked at again for a change.
RECHECK_S: Final = 5.0


class Preseed(BaseModel):
    """The keys of ``enroll.toml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    collector_url: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    ca_file: Path | None = None
    ca_pem: Annotated[str, StringConstraints(max_length=64 * 1024)] | None = None
    token: Annotated[str, StringConstraints(min_length=8, max_length=200)]
    group: Annotated[str, StringConstraints(max_length=64)] | None = None
    note: Annotated[str, StringConstraints(max_length=500)] = ""

    def __repr__(self) -> str:  # the token must not end up in a log line or traceback
        return f"Preseed(collector_url={self.collector_url!r}, group={self.group!r})"

    __str__ = __repr__

    @model_validator(mode="after")
    def _one_ca(self) -> Preseed:
        if self.ca_file is not None and self.ca_pem is not None:
            raise ValueError("give ca_file or ca_pem, not both")
        if self.ca_pem is not None and "-----BEGIN CERTIFICATE-----" not in self.ca_pem:
            raise ValueError("ca_pem must hold a PEM certificate (-----BEGIN CERTIFICATE-----)")
        return self


def read_preseed(path: Path) -> Preseed:
    """The checked preseed file; ConfigError saying what is wrong and how to fix it."""
    try:
        info = path.stat()
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(_("preseed file {path} cannot be read: {reason}; run as root").format(
            path=path, reason=exc.strerror)) from exc
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(_(
            "preseed file {path} holds an enrollment token but is readable by others "
            "(mode {mode}); run: chmod 600 {path}"
        ).format(path=path, mode=f"{stat.S_IMODE(info.st_mode):04o}"))
    if info.st_uid not in (0, os.geteuid()):
        raise ConfigError(_(
            "preseed file {path} belongs to uid {uid}, not root; run: chown root {path}"
        ).format(path=path, uid=info.st_uid))
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(_("preseed file {path} is not valid TOML: {reason}").format(
            path=path, reason=exc)) from exc
    try:
        return Preseed.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or 'file'}: {e['msg']}"
            for e in exc.errors(include_input=False)
        )
        raise ConfigError(_(
            "preseed file {path} is invalid: {problems}. Allowed keys: collector_url, "
            "ca_file or ca_pem, token, group, note"
        ).format(path=path, problems=problems)) from None


def _enroll_once(preseed: Preseed, settings: AgentSettings) -> Credentials:
    if preseed.ca_pem is None:
        return enroll(preseed.collector_url, preseed.token, preseed.ca_file, settings)
    # enroll() copies the CA into the data directory; the PEM goes through a private temp file.
    with tempfile.NamedTemporaryFile("w", suffix=".pem", encoding="ascii") as ca:
        ca.write(preseed.ca_pem)
        ca.flush()
        return enroll(preseed.collector_url, preseed.token, Path(ca.name), settings)


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)


def enroll_from_preseed(
    settings: AgentSettings,
    *,
    sleep: Callable[[float], None] = time.sleep,
    jitter: Callable[[], float] = random.random,
) -> Credentials | None:
    """Enroll from ``settings.enroll_file`` when not enrolled yet; see the module docstring.

    None when nothing was to be done (already enrolled, or no preseed file).
    """
    path = settings.enroll_file
    if credentials_path(settings.data_dir).exists() or not path.exists():
        return None
    delay = settings.backoff_initial_s
    while True:
        # 1. the file, read afresh each round so a corrected one is taken up
        seen = _signature(path)
        preseed = read_preseed(path)
        try:
            # 2. enrollment
            credentials = _enroll_once(preseed, settings)
        except CollectorUnreachable as exc:
            wait = min(delay, settings.backoff_max_s) * (0.5 + jitter() / 2)
            log.warning("collector unreachable for preseeded enrollment; retrying",
                        error=str(exc), retry_in_s=round(wait, 1), preseed=str(path))
            _waiting(f"等待收集端以完成预置注册：{exc}", wait)
            sleep(wait)
            delay = min(delay * 2, settings.backoff_max_s)
            continue
        except EnrollmentError as exc:
            # 3. refused: wait for a corrected file, never ask again with the same one
            log.error("preseeded enrollment refused; fix the preseed file to retry",
                      error=str(exc), preseed=str(path),
                      hint=f"put a valid group token into {path}; the agent retries by itself "
                           "when the file changes")
            while _signature(path) == seen:
                _waiting(f"预置注册被拒绝：{exc}；请修正 {path}", RECHECK_S)
                sleep(RECHECK_S)
            delay = settings.backoff_initial_s
            continue
        # 4. enrolled
        if preseed.group is not None and preseed.group != credentials.group:
            log.warning("the preseed file names another group than the token gave",
                        expected=preseed.group, group=credentials.group)
        log.info("enrolled from preseed file", agent_id=str(credentials.agent_id),
                 group=credentials.group, preseed=str(path), note=preseed.note or None)
        return credentials


def _waiting(status: str, seconds: float) -> None:
    """Keep systemd from timing the start out while enrollment waits (Type=notify)."""
    usec = int((seconds + 30) * 1_000_000)
    systemd.notify(f"STATUS={status}\nEXTEND_TIMEOUT_USEC={usec}\nWATCHDOG=1")

