"""The policy the collector itself acts on: the newest published bundle, else the files.

The same order the silent monitor follows (``collector/monitor.py``): once a
bundle for every group is published, it is what counts; before that, the
policy directory. A bundle or files that turned bad keep the last good set.
A call costs one primary-key read and a stat per file; parsing happens only
when something changed.
"""

from __future__ import annotations

import threading
from pathlib import Path

import structlog

from agent.errors import PolicyError
from agent.policy.bundle import parse_bundle, policy_set
from agent.policy.loader import PolicySet, load_policy_dir
from collector.store.database import Database
from collector.store.policies import latest_for_group, latest_version

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
    a caller can compare identities to skip re-deriving its own state.
    """

    def __init__(self, db: Database, policy_dir: Path | None) -> None:
        self.db = db
        self.policy_dir = policy_dir
        self.policies: PolicySet | None = None
        self._bundle_version = 0
        self._files: tuple[object, ...] | None = None
        # Periodic passes call get() from worker threads at once.
        self._lock = threading.Lock()

    def get(self) -> PolicySet | None:
        with self._lock:
            return self._get()

    def _get(self) -> PolicySet | None:
        version = latest_version(self.db)
        if version:
            if version != self._bundle_version:
                self._bundle_version = version
                bundle = latest_for_group(self.db, None)
                if bundle is not None:
                    try:
                        self.policies = policy_set(parse_bundle(bundle.body))
                        self._files = None
                    except PolicyError as exc:
                        log.error("published bundle unusable; keeping the last good policy",
                                  version=bundle.version, error=str(exc))
            if self.policies is not None and self._files is None:
                return self.policies
        signature = files_signature(self.policy_dir)
        if signature != self._files and self.policy_dir is not None:
            try:
                self.policies = load_policy_dir(self.policy_dir)
            except PolicyError as exc:
                log.error("policy files unusable; keeping the last good policy", error=str(exc))
            self._files = signature
        return self.policies
