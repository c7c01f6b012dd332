"""The agent process: sources into detectors into the spool, and the shipper out of it.

Start-up, in order (any failure before step 6 is a CourtguardError and exit 2):

1. credentials, and a collector URL the settings allow;
2. the policy sections the enabled detectors read, plus ``agent``: the last
   good signed bundle when there is one (verified again), else ``policy_dir``;
3. the spool, told how to stamp its ``agent.spool_dropped`` reports;
4. the network-change watch (rtnetlink routes and rules: the shipper's and
   the policy client's connections start afresh when routes change) and the
   shipper (its task starts after step 8);
5. the ``agent.started`` event, then a stored isolation order still in force
   is applied again (``agent.isolation``; after a reboot the kernel has none);
6. each enabled detector: capabilities checked, source and detector built and
   pumped; a detector that lacks a privilege, whose source is unavailable or
   that crashes is reported degraded or failed (once, as
   ``agent.detector_degraded``) and the others keep running;
7. heartbeat (first one now), policy client and isolation keeper (first
   fetch now; only with a policy key pinned at enrollment; the keeper also
   needs CAP_NET_ADMIN), holiday calendar check (first after one interval:
   ``agent.calendar_expiring`` / ``agent.calendar_expired`` at most once a
   day, when a detector's policy carries a calendar) and systemd watchdog
   tasks, and the upgrade client (``agent.upgrade.client``: signed releases
   from the collector; with a pinned key and ``upgrades`` on);
8. ``READY=1``, ``releases/running.json`` (the upgrader's health signal) and
   the ``agent ready`` log line.

A verified new policy is applied at once to every detector (``apply_policy``:
the ``PolicySet`` and each detector's section swapped with no await between,
then each source's ``update_policy``), stored as the last good bundle and
reported as ``agent.policy_applied``; a refused one as ``agent.policy_rejected``
and in the heartbeats until a bundle is applied.

Shutdown (SIGTERM, SIGINT or ``request_stop``): stop the sources, finalize the
detectors, emit ``agent.stopping``, give the shipper ``shutdown_flush_s`` to
empty the spool, close it. The daemon names no detector: it runs whatever
registry it is given (``agent.registry.DETECTORS`` by default).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from agent import capabilities as caps
from agent import network_changes, systemd
from agent.calendar_coverage import CoverageWatch, calendar_coverage
from agent.detector import DetectorSpec, SourceContext, SourceUnavailable
from agent.enrollment import (
    Credentials,
    ca_path,
    check_collector_url,
    load_credentials,
    save_credentials,
)
from agent.errors import ConfigError, SpoolError
from agent.events import (
    DetectorHealth,
    Finding,
    PolicyAppliedEvidence,
    PolicyRejectedEvidence,
    Severity,
)
from agent.evidence.service import Evidence
from agent.health import (
    agent_rule,
    calendar_finding,
    detector_degraded_finding,
    policy_applied_finding,
    policy_rejected_finding,
)
from agent.heartbeat import HeartbeatBuilder
from agent.isolation.keeper import IsolationKeeper, NftEnforcer
from agent.policy.calendar import CalendarSection
from agent.policy.client import PolicyClient, Rejected, Verified, read_last_good
from agent.policy.loader import PolicySet, load_policy_dir
from agent.registry import DETECTORS
from agent.settings import AgentSettings
from agent.shipper import Shipper
from agent.spool import Spool
from agent.upgrade import state as upgrade_state
from agent.upgrade.client import UpgradeClient
from agent.version import __version__

log = structlog.get_logger("courtguard.daemon")


def required_sections(enabled: Iterable[DetectorSpec[Any, Any]]) -> frozenset[str]:
    """The kinds a policy (files or bundle) must hold for ``enabled``: theirs and ``agent``.

    Collector-only kinds (``AGENT_READS = False``, e.g. ``alerting``) are never among
    them: agents are served bundles without those.
    """
    return frozenset({"agent", *(s.policy_section for s in enabled)})


@dataclass
class _Running:
    """One started detector and the tasks that drive it."""

    spec: DetectorSpec[Any, Any]
    detector: Any
    section: Any
    source: Any = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    failed: bool = False
    #: Set after each observation is evaluated: an idle detector's finalize waits for it.
    evaluated: asyncio.Event = field(default_factory=asyncio.Event)


class Daemon:
    """One agent process; ``run`` returns the exit code."""

    def __init__(
        self,
        settings: AgentSettings,
        *,
        registry: Sequence[DetectorSpec[Any, Any]] = DETECTORS,
        transport: Any = None,
        capabilities: frozenset[str] | None = None,
        handle_signals: bool = True,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.calendar_watch = CoverageWatch()
        self.registry = tuple(registry)
        self._transport = transport
        self._caps = capabilities
        self._handle_signals = handle_signals
        self.health: dict[str, DetectorHealth] = {}
        self.running: dict[str, _Running] = {}
        self.ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._stop_reason = "requested"
        self._fatal: BaseException | None = None
        self._reported: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._started = time.monotonic()
        self.policy = PolicySet()
        self.policy_client: PolicyClient | None = None
        self.isolation: IsolationKeeper | None = None
        self.upgrades: UpgradeClient | None = None
        self.policy_rejection: PolicyRejectedEvidence | None = None
        self._credentials: Credentials | None = None
        self.spool: Spool | None = None
        self.shipper: Shipper | None = None
        self.evidence: Evidence | None = None
        #: Raise ``self.network.changed()`` when the path to the collector may have changed.
        self.network = network_changes.NetworkChanges()

    def request_stop(self, reason: str = "requested") -> None:
        if not self._stop.is_set():
            self._stop_reason = reason
            self._stop.set()

    async def run(self) -> int:
        """Start, run until asked to stop, shut down; see the module docstring."""
        settings = self.settings
        self._started = time.monotonic()
        # 1. Identity.
        credentials = load_credentials(settings.data_dir)
        check_collector_url(credentials.collector_url, settings.allow_plain_http)
        if (
            credentials.collector_url.startswith("https://")
            and not ca_path(settings.data_dir).exists()
        ):
            raise ConfigError(
                f"{ca_path(settings.data_dir)} is missing: enroll again with --ca CA.pem"
            )
        # 2. Policy for what will run.
        enabled = [s for s in self.registry if settings.detector_enabled(s.name)]
        for spec in self.registry:
            if spec not in enabled:
                self.health[spec.name] = DetectorHealth(state="disabled", reason="off in settings")
        known = {s.name for s in self.registry}
        for name in sorted(set(settings.detectors) - known):
            log.warning("settings name a detector this agent does not have", detector=name)
        required = required_sections(enabled)
        self._credentials = credentials
        await self._initial_policy(credentials, required)
        if self.policy_client is not None and settings.upgrades:
            self.upgrades = await self._upgrade_client(credentials.policy_key)
        # 3. Spool.
        self.spool = spool = await asyncio.to_thread(
            Spool,
            settings.spool_path,
            agent_id=credentials.agent_id,
            host=settings.hostname,
            max_bytes=settings.spool_max_bytes,
        )
        try:
            drop = self._agent_rule("agent.spool-dropped")
            await asyncio.to_thread(
                spool.configure_drop_report, drop[0], drop[1], self.policy.version
            )
            # 4. Network-change watch and shipper.
            self.network.start()
            self.evidence = Evidence(settings, credentials.authorization, self._evidence_lost)
            await self.evidence.start()
            self.shipper = Shipper(
                spool,
                credentials,
                settings,
                transport=self._transport,
                on_policy_hint=self.policy_client.hint if self.policy_client else None,
                network=self.network,
                on_capture_orders=self.evidence.orders,
                on_isolation_hint=self.isolation.hint if self.isolation else None,
                on_release_hint=self.upgrades.hint if self.upgrades else None,
            )
            # 5. Started.
            await self.emit(
                Finding(
                    kind="agent.started",
                    severity=Severity.INFO,
                    summary=f"代理已启动（版本 {__version__}，启用检测器 {len(enabled)} 个）",
                    evidence={
                        "agent_version": __version__,
                        "pid": os.getpid(),
                        "policy_version": self.policy.version,
                        "detectors": [s.name for s in enabled],
                    },
                )
            )
            # An isolation in force is back in the kernel before anything else runs.
            if self.isolation is not None:
                await self.isolation.restore()
            # 6. Detectors.
            held = caps.effective() if self._caps is None else self._caps
            for spec in enabled:
                await self._start_detector(spec, held)
            # 7. Heartbeat and watchdog.
            self._tasks.append(asyncio.create_task(self._guard(self._heartbeats()), name="hb"))
            self._tasks.append(
                asyncio.create_task(self._guard(self._evidence_uploads()), name="evidence")
            )
            self._tasks.append(
                asyncio.create_task(self._guard(self._calendar_checks()), name="calendar")
            )
            if self.policy_client is not None:
                self._tasks.append(
                    asyncio.create_task(self._guard(self._policy_updates()), name="policy")
                )
            if self.isolation is not None:
                self._tasks.append(
                    asyncio.create_task(self._guard(self._isolation_orders()), name="isolation")
                )
            if self.upgrades is not None:
                self._tasks.append(
                    asyncio.create_task(self._guard(self._upgrade_checks()), name="upgrades")
                )
            interval = systemd.watchdog_interval()
            if interval is not None:
                self._tasks.append(asyncio.create_task(self._watchdog(interval), name="watchdog"))
            self._install_signals()
            # 8. Ready.
            systemd.ready(f"running {len(self.running)} of {len(enabled)} detectors")
            log.info(
                "agent ready",
                version=__version__,
                agent_id=str(credentials.agent_id),
                collector=credentials.collector_url,
                policy_version=self.policy.version,
                detectors={name: h.state for name, h in self.health.items()},
            )
            if self.upgrades is not None:
                # The upgrader's health signal: this version got as far as READY.
                await asyncio.to_thread(upgrade_state.mark_ready, settings.data_dir, __version__)
            self.ready.set()
            # The shipper starts once ready: its HTTP client and TLS context are not what
            # "ready" waits for, and what was spooled before is shipped at its first round.
            shipper_task = asyncio.create_task(self._guard(self.shipper.run()), name="shipper")
            await self._stop.wait()
            await self._shutdown(shipper_task)
        finally:
            self._remove_signals()
            self.network.close()
            await asyncio.to_thread(spool.close)
        if self._fatal is not None:
            raise self._fatal
        return 0

    async def emit(self, *findings: Finding) -> None:
        """Spool findings (off the event loop) and wake the shipper."""
        if self.spool is None:
            return
        events = await asyncio.to_thread(self.spool.append, findings, self.policy.version)
        if self.shipper is not None:
            self.shipper.wake()
        if self.evidence is not None:
            for finding, event in zip(findings, events, strict=False):
                if finding.capture is not None:
                    self.evidence.order(finding.capture.model_copy(update={"event_id": event.id}))

    # -- detectors -------------------------------------------------------------

    async def _start_detector(self, spec: DetectorSpec[Any, Any], held: frozenset[str]) -> None:
        lacking = caps.missing(spec.capabilities, held)
        if lacking:
            reason = (
                f"missing capabilities {', '.join(lacking)}; grant them in the systemd unit "
                "(AmbientCapabilities, CapabilityBoundingSet)"
            )
            await self._degrade(spec.name, "degraded", reason)
            if not spec.runs_degraded:
                return
        section = self.policy.section(spec.policy_section)
        try:
            source = spec.make_source(SourceContext(self.settings, section, held))
            detector = spec.make_detector()
        except SourceUnavailable as exc:
            await self._degrade(spec.name, "degraded", f"source unavailable: {exc}")
            return
        except Exception as exc:
            log.exception("detector failed to start", detector=spec.name)
            await self._degrade(spec.name, "failed", f"{type(exc).__name__}: {exc}")
            return
        running = _Running(spec, detector, section, source)
        self.running[spec.name] = running
        # A source that works a lesser way (a fallback) says so in its health reason.
        self.health.setdefault(
            spec.name, DetectorHealth(state="ok", reason=getattr(source, "status_note", None))
        )
        running.tasks = [
            asyncio.create_task(self._pump(running, source), name=f"pump:{spec.name}"),
            asyncio.create_task(self._finalize_every(running), name=f"finalize:{spec.name}"),
        ]

    async def _pump(self, running: _Running, source: Any) -> None:
        try:
            async for observation in source.observations():
                findings = running.detector.evaluate(
                    observation, running.section, datetime.now(UTC)
                )
                running.evaluated.set()
                findings = list(findings)
                if findings:
                    await self.emit(*findings)
        except SourceUnavailable as exc:
            await self._fail(running, "degraded", f"source unavailable: {exc}")
        except SpoolError as exc:
            self._fatal_error(exc)
        except Exception as exc:
            log.exception("detector crashed", detector=running.spec.name)
            await self._fail(running, "failed", f"{type(exc).__name__}: {exc}")

    async def _finalize_every(self, running: _Running) -> None:
        """Finalize on the spec's timer; a detector that says it is ``idle`` (nothing held
        for finalize) is not woken again until it has evaluated an observation."""
        idle = getattr(running.detector, "idle", None)
        while True:
            await asyncio.sleep(running.spec.finalize_every_s)
            if idle is not None and idle():
                running.evaluated.clear()
                await running.evaluated.wait()
                continue
            await self._finalize(running)

    async def _finalize(self, running: _Running) -> None:
        try:
            findings = list(running.detector.finalize(running.section, datetime.now(UTC)))
            if findings:
                await self.emit(*findings)
        except SpoolError as exc:
            self._fatal_error(exc)
        except Exception as exc:
            log.exception("detector finalize crashed", detector=running.spec.name)
            await self._fail(running, "failed", f"{type(exc).__name__}: {exc}")

    async def _fail(self, running: _Running, state: str, reason: str) -> None:
        """Stop one detector's other task and report it; the rest of the agent carries on."""
        running.failed = True
        current = asyncio.current_task()
        for task in running.tasks:
            if task is not current:
                task.cancel()
        await self._degrade(running.spec.name, state, reason)

    async def _degrade(self, name: str, state: str, reason: str) -> None:
        """Mark a detector degraded or failed; the event goes out once per detector."""
        reason = reason[:500]
        self.health[name] = DetectorHealth(state=state, reason=reason)
        log.warning("detector not fully working", detector=name, state=state, reason=reason)
        if name in self._reported:
            return
        self._reported.add(name)
        finding = detector_degraded_finding(self.policy.section("agent"), name, state, reason)
        if finding is not None:
            await self.emit(finding)

    # -- policy ----------------------------------------------------------------

    async def _initial_policy(self, credentials: Credentials, required: frozenset[str]) -> None:
        """Start on the last good bundle if one verifies, else on the local policy_dir."""
        settings = self.settings
        last_good: Verified | None = None
        if credentials.policy_key:
            last_good = await asyncio.to_thread(
                read_last_good, settings.data_dir, credentials.policy_key, credentials.group,
                required,
            )
        if last_good is not None:
            self.policy = last_good.policies
            log.info("starting on the last good policy bundle", version=self.policy.version)
        else:
            self.policy = await asyncio.to_thread(load_policy_dir, settings.policy_dir, required)
            collector_only = list(self.policy.collector_only)
            if collector_only:
                log.warning("policy_dir holds collector-only policy that agents never read; "
                            "delete it from this workstation", kinds=collector_only,
                            policy_dir=str(settings.policy_dir))
        if credentials.policy_key:
            self.policy_client = PolicyClient(
                data_dir=settings.data_dir,
                public_key=credentials.policy_key,
                group=credentials.group,
                required=required,
                interval_s=settings.policy_poll_s,
                applied=last_good.bundle if last_good else None,
                wait_s=settings.policy_wait_s,
                etag=last_good.etag if last_good else None,
            )
            if "CAP_NET_ADMIN" in (caps.effective() if self._caps is None else self._caps):
                self.isolation = IsolationKeeper(
                    data_dir=settings.data_dir,
                    public_key=credentials.policy_key,
                    agent_id=credentials.agent_id,
                    enforcer=NftEnforcer(settings.data_dir),
                    emit=self.emit,
                    clock=self.clock,
                    interval_s=settings.policy_poll_s,
                )
        else:
            log.warning("no policy key pinned at enrollment: central policy is off; enroll again "
                        "with a collector that has one to receive signed policy")

    async def _policy_updates(self) -> None:
        from agent.collector_http import collector_client  # httpx loads only where it is used

        # Started only once both are set.
        assert self.policy_client is not None and self._credentials is not None  # noqa: S101 (this task starts once both are set)
        async with collector_client(
            self._credentials, self.settings, self._transport, self.network
        ) as client:
            await self.policy_client.run(
                client, self._credentials.authorization, self._policy_outcome
            )

    async def _upgrade_client(self, policy_key: str | None) -> UpgradeClient | None:
        from agent.upgrade.release import machine_architecture
        from agent.upgrade.upgrader import UpgradePlan

        if policy_key is None:
            return None
        settings = self.settings
        await asyncio.to_thread(upgrade_state.mark_started, settings.data_dir)
        policy_client = self.policy_client
        return UpgradeClient(
            plan=UpgradePlan(settings.data_dir, settings.upgrade_install_command,
                             settings.upgrade_service, settings.upgrade_health_timeout_s),
            public_key=policy_key,
            group=lambda: policy_client.group if policy_client else "",
            running_version=__version__,
            architecture=await asyncio.to_thread(machine_architecture),
            emit=self.emit,
            interval_s=settings.policy_poll_s * 10,
        )

    async def _upgrade_checks(self) -> None:
        from agent.collector_http import collector_client

        assert self.upgrades is not None and self._credentials is not None  # noqa: S101 (this task starts once both are set)
        async with collector_client(
            self._credentials, self.settings, self._transport, self.network
        ) as client:
            await self.upgrades.run(client, self._credentials.authorization)

    async def _isolation_orders(self) -> None:
        from agent.collector_http import collector_client

        assert self.isolation is not None and self._credentials is not None  # noqa: S101 (this task starts once both are set)
        async with collector_client(
            self._credentials, self.settings, self._transport, self.network
        ) as client:
            await self.isolation.run(client, self._credentials.authorization)

    async def _policy_outcome(self, outcome: Verified | Rejected) -> None:
        """Apply a verified bundle everywhere, or report the refusal; keep running either way."""
        assert self.policy_client is not None  # noqa: S101 (only its task calls this)
        if isinstance(outcome, Rejected):
            self.policy_rejection = outcome.evidence
            log.error("policy bundle rejected", reason_code=outcome.evidence.reason_code,
                      reason=outcome.evidence.reason, applied_version=self.policy.version)
            await self.emit(policy_rejected_finding(self.policy.section("agent"), outcome.evidence))
            return
        previous = self.policy.version
        # Stored before applied: a stop cancels a thread job still queued behind others, and an
        # applied version that was never stored would leave the next start on an older policy.
        try:
            await asyncio.to_thread(self.policy_client.keep, outcome)
        except OSError as exc:
            log.error("cannot store the last good policy bundle", error=str(exc))
        await self.apply_policy(outcome.policies)
        self.policy_rejection = None
        await self._moved_to(outcome.group)
        if self.spool is not None:
            drop = self._agent_rule("agent.spool-dropped")
            await asyncio.to_thread(
                self.spool.configure_drop_report, drop[0], drop[1], self.policy.version
            )
        log.info("policy applied", version=self.policy.version, previous=previous)
        evidence = PolicyAppliedEvidence(
            version=self.policy.version, previous_version=previous, group=outcome.group,
            source="collector", kinds=sorted(outcome.policies.documents), sha256=outcome.sha256,
        )
        await self.emit(policy_applied_finding(self.policy.section("agent"), evidence))

    async def apply_policy(self, policies: PolicySet) -> None:
        """Swap the policy into every running detector at once, then tell the sources."""
        self.policy = policies
        running = [r for r in self.running.values() if not r.failed]
        for item in running:  # no await in this loop: no observation sees a mix
            item.section = policies.section(item.spec.policy_section)
        for item in running:
            update = getattr(item.source, "update_policy", None)
            if update is None:
                continue
            try:
                update(item.section)
            except Exception as exc:
                log.exception("source failed to take the new policy", detector=item.spec.name)
                await self._fail(item, "failed", f"update_policy: {type(exc).__name__}: {exc}")

    async def _moved_to(self, group: str) -> None:
        """Remember a group the collector moved this agent to, for the next start."""
        credentials = self._credentials
        if credentials is None or credentials.group == group:
            return
        self._credentials = credentials.model_copy(update={"group": group})
        await asyncio.to_thread(save_credentials, self.settings.data_dir, self._credentials)
        log.info("agent moved to another group", group=group, previous=credentials.group)

    # -- housekeeping ----------------------------------------------------------

    async def _heartbeats(self) -> None:
        builder = HeartbeatBuilder(self.settings.heartbeat_interval_s)
        while True:
            assert self.spool is not None  # noqa: S101 (set before this task starts)
            stats = await asyncio.to_thread(self.spool.stats)
            await self.emit(
                builder.finding(self.policy.version, stats, self.health, self.policy_rejection)
            )
            await asyncio.sleep(self.settings.heartbeat_interval_s)

    async def _evidence_uploads(self) -> None:
        from agent.collector_http import collector_client  # httpx loads only where it is used

        assert self.evidence is not None and self._credentials is not None  # noqa: S101 (set before this task starts)
        async with collector_client(
            self._credentials, self.settings, self._transport, self.network
        ) as client:
            await self.evidence.run_uploads(client)

    def _evidence_lost(self, code: str, summary: str, evidence: dict[str, Any]) -> None:
        """A capture not made or a pcap given up: an ``agent.evidence_lost`` event."""
        severity, rule_id = self._agent_rule("agent.evidence-lost")
        finding = Finding(kind="agent.evidence_lost", severity=severity, summary=summary[:500],
                          rule_id=rule_id, evidence=evidence)
        task = asyncio.create_task(self._guard(self.emit(finding)), name=f"evidence-lost:{code}")
        self._tasks.append(task)

    async def _calendar_checks(self) -> None:
        while True:
            await asyncio.sleep(self.settings.calendar_check_interval_s)
            await self.check_calendar()

    async def check_calendar(self) -> None:
        """Warn, at most once a day, that the holiday calendar the detectors judge by runs out."""
        now = self.clock()
        read = {r.spec.policy_section for r in self.running.values() if not r.failed}
        sections = (getattr(self.policy.section(name), "calendar", None) for name in sorted(read))
        calendars = [s.work_calendar() for s in sections if isinstance(s, CalendarSection)]
        if not calendars:  # no running detector judges days by the calendar
            return
        coverage = calendar_coverage(calendars, now)
        if not self.calendar_watch.due(coverage):
            return
        finding = calendar_finding(self.policy.section("agent"), coverage)
        if finding is not None:
            log.warning("holiday calendar runs out", state=coverage.state.value,
                        covered_until=coverage.covered_until.isoformat())
            await self.emit(finding)

    async def _watchdog(self, interval: float) -> None:
        # On the event loop on purpose: a wedged loop stops the pings and systemd restarts us.
        while True:
            systemd.watchdog()
            await asyncio.sleep(interval)

    async def _guard(self, coro: Any) -> None:
        """Run a housekeeping coroutine; a spool failure in it stops the agent."""
        try:
            await coro
        except SpoolError as exc:
            self._fatal_error(exc)

    def _fatal_error(self, exc: BaseException) -> None:
        log.error("spool failure; the agent stops", error=str(exc))
        self._fatal = exc
        self.request_stop("spool failure")

    def _agent_rule(self, rule_id: str) -> tuple[Severity, str | None]:
        """Severity and rule id for one of the agent's own events; medium when the rule is off."""
        return agent_rule(self.policy.section("agent"), rule_id)

    async def _shutdown(self, shipper_task: asyncio.Task[None]) -> None:
        """Stop sources, finalize, say goodbye, let the shipper flush; see the module docstring."""
        systemd.stopping()
        log.info("agent stopping", reason=self._stop_reason)
        if self.evidence is not None:
            await self.evidence.close()
        for task in self._tasks:
            task.cancel()
        detector_tasks = [t for r in self.running.values() for t in r.tasks]
        for task in detector_tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, *detector_tasks, return_exceptions=True)
        if self._fatal is None:
            for running in self.running.values():
                if not running.failed:
                    await self._finalize(running)
            with contextlib.suppress(SpoolError):
                await self.emit(
                    Finding(
                        kind="agent.stopping",
                        severity=Severity.INFO,
                        summary=f"代理正在停止：{self._stop_reason}",
                        evidence={"reason": self._stop_reason[:200], "uptime_s": self._uptime()},
                    )
                )
        flushed = False
        if self.shipper is not None and self._fatal is None:
            flushed = await self.shipper.flush(self.settings.shutdown_flush_s)
        shipper_task.cancel()
        await asyncio.gather(shipper_task, return_exceptions=True)
        log.info("agent stopped", flushed=flushed)

    def _uptime(self) -> float:
        return round(time.monotonic() - self._started, 3)

    def _install_signals(self) -> None:
        if not self._handle_signals:
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop, sig.name)

    def _remove_signals(self) -> None:
        if not self._handle_signals:
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
