"""The policy the collector itself acts on: the newest verified bundle, else the files.

The same order the silent monitor follows (``collector/correlation/silent_pass.py``): once a
bundle for every group is published and verifies, it is what counts; before
that, the policy directory. A bundle that fails verification (an edited row)
is reported and skipped for the newest older one that verifies, or the one
already in use; with none, the files count. Files that turned bad keep the
last good set. A call costs one primary-key read (and a stat per file while
on the files); verifying and parsing happen only when the version counter moved.
"""

from __future__ import annotations

import threading
from pathlib import Path

import structlog

from agent.errors import PolicyError
from agent.policy.loader import PolicySet, load_policy_dir
from collector.policy.rejections import RejectionReporter, newest_verified
from collector.store.database import Database
from collector.store.policies import latest_version

log = structlog.get_logger("collector.policy")


def files_signature(directory: Path | None) -> tuple[object, ...]:
    """Path, name, size and mtime of each policy file: changes whenever a file does."""
    if directory is None or not directory.is_dir():
        return (directory,)
    entries = sorted(
        (path.name, stat.st_size, stat.st_mtime_ns)
        for path in directory.glob("*.yaml")
        for stat in (path.stat(),)
    )
    return (directory, *entries)


class CurrentPolicy:
    """One per collector process, shared by every part that acts on policy.

    ``get`` returns the same ``PolicySet`` object until something changed, so
    a caller can compare identities to skip re-deriving its own state. A
    bundle is verified (``collector/policy/rejections.py``) when the version
    counter moves, never per call; ``public_key`` is the key file's public
    half (``verifying_public_key``): without it no bundle is believed.
    """

    def __init__(self, db: Database, policy_dir: Path | None, public_key: str | None) -> None:
        self.db = db
        self.policy_dir = policy_dir
        self.public_key = public_key
        self.policies: PolicySet | None = None
        self.reporter = RejectionReporter(db)
        self._counter = 0  # the policy_counter value last looked at
        self._bundle_version: int | None = None  # the verified bundle in use, if any
        self._files: tuple[object, ...] | None = None
        self._warned_no_key = False
        # Periodic passes call get() from worker threads at once.
        self._lock = threading.Lock()

    @property
    def bundle_version(self) -> int | None:
        """The verified bundle's version the collector acts on; None while on the files."""
        return self._bundle_version

    def get(self) -> PolicySet | None:
        with self._lock:
            return self._get()

    def _get(self) -> PolicySet | None:
        counter = latest_version(self.db)
        if counter and counter != self._counter:
            self._counter = counter
            self._adopt_newest_verified()
        if self._bundle_version is not None:
            return self.policies
        signature = files_signature(self.policy_dir)
        if signature != self._files and self.policy_dir is not None:
            try:
                self.policies = load_policy_dir(self.policy_dir)
            except PolicyError as exc:
                log.error("policy files unusable; keeping the last good policy", error=str(exc))
            self._files = signature
        return self.policies

    def _adopt_newest_verified(self) -> None:
        if self.public_key is None:
            if not self._warned_no_key:
                self._warned_no_key = True
                log.error("published policy bundles cannot be verified: no policy signing key "
                          "in data_dir (copy policy-signing.key there); acting on the policy "
                          "files", policy_dir=str(self.policy_dir))
            return
        found = newest_verified(self.db, None, self.public_key, self.reporter,
                                held=self._bundle_version, files=self.policy_dir is not None)
        if found is not None:
            self._bundle_version = found[0].version
            self.policies = found[1]
            self._files = None
