"""The accounts detector's one source: several host readers merged into one stream.

1. ``AccountsSource`` starts one thread per reader (auth log, sessions,
   processes, groups, mounts, files); each blocks in its own thread and hands
   observations (one, or a list read at once) to the event loop through a
   bounded queue (full: the observation is dropped and counted in the log).
2. Before the first observation about an account it has not resolved yet, it
   yields that account's ``GroupState`` (NSS), so the pure detector knows
   group-selected contractors.
3. a ``Checkpoint`` in the queue is a log cursor, saved only when the daemon
   has handled everything before it (see ``readers.authlog``);
4. ``update_policy`` re-targets the readers that depend on policy (who is a
   contractor, what to watch).
"""

from __future__ import annotations

import asyncio
import contextlib
import pwd
import threading
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import structlog

from agent.detector import SourceContext, SourceUnavailable
from agent.detectors.accounts.observations import AuthRecord, GroupState
from agent.detectors.accounts.policy import AccountsPolicy
from agent.detectors.accounts.readers.authlog import Checkpoint, FileFollower, JournalFollower
from agent.detectors.accounts.readers.files import FileSource, build_plan
from agent.detectors.accounts.readers.host import (
    Directory,
    GroupSource,
    MountSource,
    ProcessSource,
    SessionSource,
    groups_of,
)
from agent.detectors.accounts.settings import AccountsSourceSettings

log = structlog.get_logger("courtguard.accounts.source")
QUEUE_MAX: Final = 10_000
Reader = Any


class AccountsSource:
    """See the module docstring."""

    def __init__(
        self,
        settings: AccountsSourceSettings,
        policy: AccountsPolicy | None,
        *,
        host: str,
        data_dir: Path,
        agent_dirs: list[Path],
    ) -> None:
        self.settings = settings
        self.host = host
        self.agent_dirs = agent_dirs
        self.directory = Directory()
        self.directory.update(policy)
        self.dropped = 0
        self._resolved: set[str] = set()
        self.readers: dict[str, Reader] = {}
        data_dir.mkdir(parents=True, exist_ok=True)
        self.readers["logins"] = LoginLogReader(
            settings, data_dir, host, self.directory.names_contractor
        )
        self.sessions = SessionSource(host, settings.session_poll_s)
        self.readers["sessions"] = self.sessions
        processes = ProcessSource(
            host, self.directory, settings.process_poll_s, settings.hash_max_bytes,
            events=settings.process_events,
        )
        self.readers["processes"] = processes
        #: What the heartbeat's health says about how this source works (None: as designed).
        self.status_note: str | None = None
        if processes.fallback_reason is not None:
            self.status_note = f"processes: {processes.fallback_reason}"
            log.warning("accounts: new processes are scanned", reason=processes.fallback_reason)
        self.groups = GroupSource(host, self.directory, settings.group_recheck_s)
        self.readers["groups"] = self.groups
        self.readers["mounts"] = MountSource(host)
        self.files = FileSource(host)
        self.files.replan(self._plan(policy))
        self.readers["files"] = self.files

    def _plan(self, policy: AccountsPolicy | None) -> Any:
        protected: set[str] = set()
        homes: dict[str, Path] = {}
        if policy is not None:
            for role in policy.roles.values():
                protected.update(policy.expand(role.protected_paths))
            for account in self.directory.candidates():
                with contextlib.suppress(KeyError):
                    homes[account] = Path(pwd.getpwnam(account).pw_dir)
        return build_plan(
            sorted(protected), homes, list(self.settings.crontab_dirs), self.agent_dirs
        )

    def update_policy(self, section: AccountsPolicy) -> None:
        self.directory.update(section)
        self._resolved.clear()
        self.groups.wake.set()
        self.files.replan(self._plan(section))

    async def observations(self) -> AsyncIterator[Any]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue(QUEUE_MAX)
        stop = threading.Event()

        def put(observations: Any) -> None:
            for observation in observations if isinstance(observations, list) else [observations]:
                try:
                    queue.put_nowait(observation)
                except asyncio.QueueFull:
                    self.dropped += 1
                    if self.dropped % 1000 == 1:
                        log.warning(
                            "accounts observations dropped: queue full", dropped=self.dropped
                        )

        def emit(observation: Any) -> None:
            loop.call_soon_threadsafe(put, observation)

        threads = [
            threading.Thread(
                target=self._guarded,
                args=(name, reader, emit, stop),
                name=f"accounts-{name}",
                daemon=True,
            )
            for name, reader in self.readers.items()
        ]
        for thread in threads:
            thread.start()
        try:
            while True:
                item = await queue.get()
                if isinstance(item, Checkpoint):
                    # everything queued before it has been evaluated and spooled by now
                    await asyncio.to_thread(item.commit)
                    continue
                observation, extras = await self._prelude(item)
                for extra in extras:
                    yield extra
                yield observation
        finally:
            stop.set()
            for reader in self.readers.values():  # readers that block without a timeout
                halt = getattr(reader, "stop", None)
                if halt is not None:
                    halt()

    def _guarded(
        self, name: str, reader: Reader, emit: Callable[[Any], None], stop: threading.Event
    ) -> None:
        try:
            reader.run(emit, stop)
        except Exception:
            log.exception("accounts reader stopped", reader=name)

    async def _prelude(self, observation: Any) -> tuple[Any, list[Any]]:
        """Name uid-only actors; the GroupState of each account seen for the first time."""
        if isinstance(observation, AuthRecord) and (observation.actor or "").startswith("#"):
            with contextlib.suppress(KeyError, ValueError):
                name = pwd.getpwuid(int((observation.actor or "")[1:])).pw_name
                observation = observation.model_copy(update={"actor": name})
        if isinstance(observation, GroupState):
            self._resolved.add(observation.account)
            return observation, []
        extras: list[Any] = []
        for attribute in ("account", "actor", "target"):
            value = getattr(observation, attribute, None)
            if not value or value in self._resolved or value.startswith("#"):
                continue
            if len(self._resolved) < 100_000:
                self._resolved.add(value)
            groups = await asyncio.to_thread(groups_of, value)
            if groups is not None:
                extras.append(
                    GroupState(time=datetime.now(UTC), host=self.host, account=value, groups=groups)
                )
        return observation, extras


class LoginLogReader:
    """The journal (``journalctl -f``) where this host has one, else the auth log files.

    Which one is decided in the reader's own thread: probing the journal runs
    ``journalctl``, which neither the event loop nor the start-up should wait for.
    """

    def __init__(
        self,
        settings: AccountsSourceSettings,
        data_dir: Path,
        host: str,
        concerns: Callable[[str | None, str | None], bool],
    ) -> None:
        self.settings = settings
        self.data_dir = data_dir
        self.host = host
        self.concerns = concerns
        self.chosen: JournalFollower | FileFollower | None = None

    def _choose(self) -> JournalFollower | FileFollower | None:
        settings = self.settings
        if settings.journal and JournalFollower.usable():
            return JournalFollower(
                self.data_dir / "accounts-journal.cursor", self.host, self.concerns
            )
        follower = FileFollower(
            list(settings.auth_logs),
            self.data_dir / "accounts-authlog.json",
            self.host,
            settings.auth_poll_s,
            self.concerns,
        )
        if follower.existing():
            return follower
        log.warning(
            "no journal and no auth log file; login and sudo lines are not read",
            paths=[str(p) for p in settings.auth_logs],
        )
        return None

    def run(self, emit: Callable[[Any], None], stop: threading.Event) -> None:
        self.chosen = chosen = self._choose()
        # Set before this check: a stop that came while choosing is seen here or by stop().
        if chosen is None or stop.is_set():
            return
        chosen.run(emit, stop)

    def stop(self) -> None:
        halt = getattr(self.chosen, "stop", None)
        if halt is not None:
            halt()


def make_source(context: SourceContext) -> AccountsSource:
    settings = context.settings
    policy = context.policy if isinstance(context.policy, AccountsPolicy) else None
    if not Path("/proc/self/mountinfo").exists():
        raise SourceUnavailable("needs Linux /proc (mountinfo, processes)")
    return AccountsSource(
        settings.accounts,
        policy,
        host=settings.hostname,
        data_dir=settings.data_dir,
        agent_dirs=[settings.policy_dir],
    )
