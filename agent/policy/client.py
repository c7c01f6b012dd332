"""Fetch the signed policy bundle from the collector, check it, and keep the last good one.

Each round (every ``policy_poll_s``, or at once when an ingest answer hints a
newer version; back to back while the collector holds the fetch, below):

1. ``GET /api/v1/policy`` with ``If-None-Match``: a 304 ends the round. Once
   the agent has a bundle it asks the collector to hold the fetch
   (``Prefer: wait=<policy_wait_s>``) until a newer version is published,
   so a policy change (blocking on or off) is applied within seconds of its
   publication rather than at the next poll or heartbeat; a collector that
   honours it says so (``Preference-Applied``) and the next round starts at
   once, one that does not is polled on the timer as before;
2. the body's signature is verified against the key pinned at enrollment,
   with that key's algorithm (Ed25519 or SM2: ``agent.signing``), before the
   bytes are parsed (``agent.policy.bundle``); a bundle the collector says it
   signed with another algorithm (``X-Courtguard-Signature-Algorithm``) is
   refused as such;
3. a bundle for another group or older than the applied version is refused,
   then every document is validated; any refusal becomes a ``Rejected`` with
   a reason code, and the agent keeps what it runs;
4. a new version is handed to the daemon, which swaps it into every detector
   at once and then calls ``keep`` to store it as the last good bundle.

The last good bundle is ``<data_dir>/policy-bundle.signed``: the base64
signature, a newline, then the exact signed bytes, written atomically. At
start it is verified again and used, so an agent whose collector is
unreachable runs the policy it last accepted; the ETag it was served with is
kept beside it (``policy-bundle.etag``), so the first fetch after a restart is
a 304, not the same bundle downloaded, verified and parsed a second time.
This module knows nothing of detectors; the daemon knows nothing of
signatures.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import structlog

from agent.errors import BundleRejected
from agent.events import PolicyRejectedEvidence
from agent.policy.bundle import (
    MAX_BUNDLE_BYTES,
    PolicyBundle,
    open_bundle,
    parse_bundle,
    policy_set,
    sha256_hex,
    verify_signature,
)
from agent.policy.loader import PolicySet

if TYPE_CHECKING:
    import httpx

log = structlog.get_logger("courtguard.policy")

LAST_GOOD_FILE: Final = "policy-bundle.signed"
#: A held fetch that returns sooner than this (and sooner than asked) was not really held.
MIN_HELD_S: Final = 1.0
LAST_GOOD_ETAG_FILE: Final = "policy-bundle.etag"


@dataclass(frozen=True)
class Verified:
    """A bundle that passed every check, with the bytes and signature to keep on disk."""

    bundle: PolicyBundle
    policies: PolicySet
    body: bytes
    signature: str
    group: str
    #: The ETag the collector served the bundle with, when it came from a collector.
    etag: str | None = None

    @property
    def sha256(self) -> str:
        return sha256_hex(self.body)


@dataclass(frozen=True)
class Rejected:
    evidence: PolicyRejectedEvidence


Outcome = Verified | Rejected | None


def last_good_path(data_dir: Path) -> Path:
    return data_dir / LAST_GOOD_FILE


def read_last_good(
    data_dir: Path, public_key: str, group: str, required: frozenset[str]
) -> Verified | None:
    """The stored bundle, verified and validated again; None when absent or no longer good.

    The bundle is judged for its own group (the agent may have been moved
    since), so it is parsed once, after the signature check.
    """
    path = last_good_path(data_dir)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    signature, _, body = raw.partition(b"\n")
    try:
        verify_signature(body, signature.decode("ascii", "replace"), public_key)
        bundle = parse_bundle(body)
        policies = policy_set(bundle, required)
    except BundleRejected as exc:
        log.error("the stored last good policy bundle is unusable", path=str(path), error=str(exc))
        return None
    try:
        etag: str | None = (data_dir / LAST_GOOD_ETAG_FILE).read_text("ascii").strip() or None
    except (OSError, UnicodeDecodeError):
        etag = None
    if etag is not None and not etag.isprintable():
        etag = None  # never a header value that could not be sent
    return Verified(bundle, policies, body, signature.decode("ascii"), group, etag)


def write_last_good(data_dir: Path, verified: Verified) -> None:
    from agent.enrollment import write_private

    etag_path = data_dir / LAST_GOOD_ETAG_FILE
    with contextlib.suppress(FileNotFoundError):
        etag_path.unlink()  # never beside a bundle it was not served with
    write_private(last_good_path(data_dir), verified.signature.encode() + b"\n" + verified.body)
    if verified.etag is not None:
        write_private(etag_path, verified.etag.encode("ascii", "replace"))


class PolicyClient:
    """Polls for the group's bundle; see the module docstring for one round."""

    def __init__(
        self,
        *,
        data_dir: Path,
        public_key: str,
        group: str,
        required: frozenset[str],
        interval_s: float,
        applied: PolicyBundle | None = None,
        etag: str | None = None,
        rng: Callable[[], float] = random.random,
        wait_s: float = 0.0,
    ) -> None:
        self.data_dir = data_dir
        self.public_key = public_key
        self.group = group
        self.required = required
        self.interval_s = interval_s
        #: How long the collector may hold a fetch that finds nothing new (0: plain polls).
        self.wait_s = wait_s
        #: The last fetch was held by the collector: the next one may start at once.
        self.held = False
        self.applied = applied
        #: Sent as If-None-Match: the applied bundle's, so an unchanged one is not sent again.
        self.etag = etag
        self.fetches = 0
        self._rng = rng
        self._wake = asyncio.Event()
        self._confirmed_at: float | None = None
        self.skipped = 0

    @property
    def applied_version(self) -> int | None:
        return None if self.applied is None else self.applied.version

    def hint(self, version: str | None) -> None:
        """The collector says the group should run ``version``: fetch now if it is newer.

        A hint naming the applied version confirms it: the next timed poll is
        skipped when such a confirmation is younger than ``interval_s``, so an
        agent whose heartbeats are acknowledged costs the collector no poll
        at all while nothing changes. The hint only ever triggers or spares a
        fetch; what is applied still comes from a verified bundle.
        """
        if version is None or not version.isdigit():
            return
        if self.applied is None or int(version) > self.applied.version:
            self._wake.set()
        elif int(version) == self.applied.version:
            self._confirmed_at = time.monotonic()

    def confirmed_recently(self) -> bool:
        """An ingest answer named the applied version within the last interval."""
        return (
            self._confirmed_at is not None
            and time.monotonic() - self._confirmed_at < self.interval_s
        )

    async def fetch_once(self, client: httpx.AsyncClient, authorization: str) -> Outcome:
        """One round: None when unchanged, unreachable or nothing is published."""
        import httpx

        headers = {"Authorization": authorization}
        timeout = client.timeout
        if self.etag is not None:
            headers["If-None-Match"] = self.etag
        if self.wait_s > 0:
            headers["Prefer"] = f"wait={self.wait_s:g}"
            timeout = httpx.Timeout(
                connect=timeout.connect,
                read=(timeout.read or 0) + self.wait_s,
                write=timeout.write,
                pool=timeout.pool,
            )
        self.fetches += 1
        self.held = False
        started = time.monotonic()
        try:
            response = await client.get("/api/v1/policy", headers=headers, timeout=timeout)
        except httpx.HTTPError as exc:
            log.info("policy fetch failed; keeping the applied policy", error=str(exc))
            return None
        # An answer that came back at once was not held, whatever the header says: poll on
        # the timer rather than ask again and again. Unless it brought another ETag (a new
        # bundle, or the first): the next fetch names it and is held.
        waits = "wait=" in response.headers.get("Preference-Applied", "")
        self.held = waits and time.monotonic() - started >= min(self.wait_s, MIN_HELD_S)
        if response.status_code == 304:
            return None
        if response.status_code != 200:
            if response.status_code != 404:
                log.warning("policy fetch refused", status=response.status_code)
            return None
        group = response.headers.get("X-Courtguard-Group") or self.group
        body = response.content
        etag = response.headers.get("ETag")
        try:
            if len(body) > MAX_BUNDLE_BYTES:
                raise BundleRejected("malformed", f"bundle larger than {MAX_BUNDLE_BYTES} bytes")
            bundle, policies = open_bundle(
                body,
                response.headers.get("X-Courtguard-Signature", ""),
                self.public_key,
                group=group,
                applied_version=self.applied_version,
                required=self.required,
                claimed_algorithm=response.headers.get("X-Courtguard-Signature-Algorithm"),
            )
        except BundleRejected as exc:
            self.held = self.held or (waits and etag not in (None, self.etag))
            self.etag = etag  # the same bad bundle is not downloaded and judged again
            return Rejected(self._rejection(exc, body))
        self.group = group
        self.held = self.held or (waits and etag not in (None, self.etag))
        self.etag = etag
        if self.applied is not None and bundle.version == self.applied.version:
            return None
        return Verified(
            bundle, policies, body, response.headers["X-Courtguard-Signature"], group, etag
        )

    def _rejection(self, exc: BundleRejected, body: bytes) -> PolicyRejectedEvidence:
        version: str | None = None
        group: str | None = None
        if exc.code != "bad_signature":  # unverified bytes are not read for their claims
            with contextlib.suppress(BundleRejected):
                parsed = parse_bundle(body)
                version, group = str(parsed.version), parsed.group
        return PolicyRejectedEvidence.model_validate(
            {
                "reason_code": exc.code,
                "reason": exc.reason[:500],
                "version": version,
                "group": group,
                "applied_version": None if self.applied is None else str(self.applied.version),
                "sha256": sha256_hex(body),
            }
        )

    def keep(self, verified: Verified) -> None:
        """Record ``verified`` as applied and store it as the last good bundle (blocking)."""
        write_last_good(self.data_dir, verified)
        self.applied = verified.bundle

    async def run(
        self,
        client: httpx.AsyncClient,
        authorization: str,
        on_outcome: Callable[[Verified | Rejected], Awaitable[None]],
    ) -> None:
        """Fetch now, then every ``interval_s`` (±10 %) or on a hint, until cancelled.

        While the collector holds fetches (``wait_s``) they follow one another
        without a pause. Otherwise a timed round is skipped while ingest
        answers confirm the applied version (``hint``); a hint of a newer
        version always fetches at once.
        """
        woken = True
        while True:
            self._wake.clear()
            if woken or self.held or not self.confirmed_recently():
                outcome = await self.fetch_once(client, authorization)
                if outcome is not None:
                    await on_outcome(outcome)
                if self.held:
                    continue  # the collector holds fetches: the next one waits there
            else:
                self.skipped += 1
            jittered = self.interval_s * (0.9 + 0.2 * self._rng())
            try:
                async with asyncio.timeout(jittered):  # wait_for can lose a cancel on 3.11
                    await self._wake.wait()
                woken = True
            except TimeoutError:
                woken = False
