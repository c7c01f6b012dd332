"""Learn of agent releases, fetch and check them, and hand a good one to the upgrader.

Each round (on an ingest answer naming a release row this agent has not looked
at, ``IngestResult.release_sequence``, or every ``interval_s``):

1. the outcome of the last upgrade (``result.json``, written by the upgrader) is
   reported once: a failure as an ``agent.upgrade_failed`` event and to the
   collector (``POST /api/v1/release/report``), a success to the collector;
2. ``GET /api/v1/release?arch=A`` names the group's target; the same version as
   the running one ends the round without a download (the answer is unsigned:
   it only ever spares a download, never decides an install);
3. ``GET /api/v1/release/package?arch=A`` brings the bytes, checked by
   ``agent.upgrade.release.check_release`` (signature first); a refusal is an
   ``agent.upgrade_failed`` event (stage ``refused``) and a report, once per package;
4. the package to go back to is found: ``current.deb`` when it is the running
   version's, else the running version's release fetched from the collector
   (``&version=``, checked the same way). Without one the upgrade is refused
   (``no_rollback_package``): publish the running version first;
5. both packages are written under ``releases/`` and the detached upgrader
   (``agent.upgrade.upgrader``) is started; it restarts this agent.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import structlog

from agent.events import Finding, Severity, UpgradeFailedEvidence
from agent.frozen import agent_command, child_environment
from agent.upgrade import state
from agent.upgrade.deb import DebError, read_control
from agent.upgrade.release import MAX_PACKAGE_BYTES, ReleaseRefused, check_release
from agent.upgrade.upgrader import UpgradePlan, systemd_running
from agent.upgrade.versions import release_order, runs

if TYPE_CHECKING:
    import httpx

log = structlog.get_logger("courtguard.upgrade")

_UNIT_SAFE: Final = re.compile(r"[^A-Za-z0-9.-]+")
#: Refusals that are not worth an event: the collector names what already runs.
_QUIET: Final = frozenset({"same_version"})


def upgrade_failed_finding(evidence: UpgradeFailedEvidence) -> Finding:
    if evidence.stage == "refused":
        version = evidence.version or "（版本未知）"
        summary = (f"已拒绝代理升级包 {version}（{evidence.reason_code}）："
                   f"{evidence.reason}；继续运行版本 {evidence.running_version}")
    else:
        back = (f"已回退至版本 {evidence.running_version}" if evidence.rolled_back
                else "回退失败，请到该终端人工检查")
        summary = (f"代理升级至 {evidence.version} 失败（{evidence.reason_code}）："
                   f"{evidence.reason}；{back}")
    return Finding(kind="agent.upgrade_failed", severity=Severity.HIGH, summary=summary[:500],
                   evidence=evidence.model_dump(mode="json", exclude_none=True))


def upgrader_command(plan: UpgradePlan, package: Path, rollback: Path, version: str,
                     running: str, sha256: str) -> list[str]:
    """How to run ``courtguard-agent upgrade-apply`` with this very installation."""
    command = agent_command(
        "upgrade-apply", "--data-dir", str(plan.data_dir), "--package", str(package),
        "--rollback", str(rollback), "--version", version, "--running", running,
        "--sha256", sha256, "--service", plan.service, "--timeout", f"{plan.health_timeout_s:g}")
    # "--install=--force-confold": a value that starts with a dash is an option otherwise.
    command += [f"--install={part}" for part in plan.install_command]
    return command


def spawn_upgrader(command: list[str], version: str, log_path: Path) -> None:
    """Start the upgrader where the agent's restart cannot stop it (``agent.upgrade.upgrader``)."""
    systemd_run = shutil.which("systemd-run")
    if systemd_running() and systemd_run is not None:
        unit = f"courtguard-upgrade-{_UNIT_SAFE.sub('-', version)}-{int(time.time())}"
        subprocess.run([systemd_run, f"--unit={unit}", "--collect", "--quiet", *command],  # noqa: S603 (our own command line)
                       check=True, capture_output=True, timeout=60)
        return
    with log_path.open("ab") as output:
        upgrader = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output,  # noqa: S603 (our own command line)
                                    stderr=output, start_new_session=True, close_fds=True,
                                    env=child_environment())
    # Reaped here should it end while this agent still runs (the restart normally ends the
    # agent first, and the upgrader is then init's child).
    threading.Thread(target=upgrader.wait, name="upgrader-reaper", daemon=True).start()


class UpgradeClient:
    def __init__(
        self,
        *,
        plan: UpgradePlan,
        public_key: str,
        group: Callable[[], str],
        running_version: str,
        architecture: str,
        emit: Callable[[Finding], Awaitable[None]],
        interval_s: float,
        spawn: Callable[[list[str], str, Path], None] = spawn_upgrader,
    ) -> None:
        self.plan = plan
        self.public_key = public_key
        self.group = group
        self.running = running_version
        self.architecture = architecture
        self.emit = emit
        self.interval_s = interval_s
        self.spawn = spawn
        self.seen = 0  # the highest release row looked at
        self.judged: set[str] = set()  # packages refused or failed: not fetched again
        self.started: str | None = None  # the version handed to the upgrader
        self._started_at = 0.0
        self._wake = asyncio.Event()

    @property
    def directory(self) -> Path:
        return state.releases_dir(self.plan.data_dir)

    def hint(self, sequence: int | None) -> None:
        if sequence is not None and sequence > self.seen:
            self._wake.set()

    async def run(self, client: httpx.AsyncClient, authorization: str) -> None:
        while True:
            self._wake.clear()
            await self.report_result(client, authorization)
            await self.check_once(client, authorization)
            try:
                async with asyncio.timeout(self.interval_s):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def report_result(self, client: httpx.AsyncClient, authorization: str) -> None:
        """Step 1: the last upgrade's outcome, as an event once and to the collector once."""
        path = state.result_path(self.plan.data_dir)
        found = state.read_json(path)
        if found is None:
            return
        sha = found.get("sha256") if isinstance(found.get("sha256"), str) else None
        if found.get("state") == "failed" and sha:
            self.judged.add(sha)  # a package that failed here is not tried again
        if found.get("reported") or found.get("state") not in ("failed", "installed"):
            return
        version = str(found.get("version", ""))[:64]
        if found["state"] == "installed":
            if not runs(version, self.running):
                return  # the upgrader has not restarted this process yet
            sent = await self._report(client, authorization, version, "installed", None, None)
            state.write_json(path, {**found, "reported": sent})
            return
        evidence = UpgradeFailedEvidence(
            stage="health" if found.get("stage") == "health" else "install",
            reason_code="not_healthy" if found.get("reason_code") == "not_healthy"
            else "install_failed",
            reason=str(found.get("reason", ""))[:500] or "未知原因",
            version=version or None, running_version=self.running[:64],
            rolled_back=bool(found.get("rolled_back")), sha256=sha)
        if not found.get("evented"):
            await self.emit(upgrade_failed_finding(evidence))
            state.write_json(path, {**found, "evented": True})
        sent = await self._report(client, authorization, version, "failed",
                                  evidence.reason_code, evidence.reason)
        state.write_json(path, {**found, "evented": True, "reported": sent})

    async def _report(self, client: httpx.AsyncClient, authorization: str, version: str,
                      status: str, code: str | None, reason: str | None) -> bool:
        import httpx

        from agent.collector_http import IDEMPOTENT

        body = {"version": version, "state": status, "architecture": self.architecture,
                "reason_code": code, "reason": reason}
        try:
            # The collector records the state by (agent, version): a report sent twice is one.
            response = await client.post("/api/v1/release/report", json=body,
                                         headers={"Authorization": authorization},
                                         extensions={IDEMPOTENT: True})
        except httpx.HTTPError as exc:
            log.info("upgrade report not delivered", error=str(exc))
            return False
        return response.status_code == 204

    def _busy(self) -> bool:
        found = state.read_json(state.result_path(self.plan.data_dir))
        if found is None or found.get("state") != "installing":
            return False
        young = time.time() - float(found.get("started_at", 0)) < 3 * self.plan.health_timeout_s
        return young and state.alive(int(found.get("pid", 0)) or -1)

    async def _get(self, client: httpx.AsyncClient, authorization: str,
                   url: str, params: dict[str, str]) -> httpx.Response | None:
        import httpx

        try:
            return await client.get(url, params=params, headers={"Authorization": authorization})
        except httpx.HTTPError as exc:
            log.info("release fetch failed", error=str(exc))
            return None

    async def check_once(self, client: httpx.AsyncClient, authorization: str) -> str:
        """Steps 2-5; the outcome as a word for logs and tests."""
        if self.started is not None and time.monotonic() - self._started_at > 3 * (
                self.plan.health_timeout_s + 60) and not self._busy():
            log.warning("the upgrader ended without an outcome; see releases/upgrader.log",
                        version=self.started)
            self.started = None
        if self.started is not None or self._busy():
            return "busy"
        response = await self._get(client, authorization, "/api/v1/release",
                                   {"arch": self.architecture})
        if response is None or response.status_code != 200:
            return "none"
        meta: dict[str, Any] = response.json()
        self.seen = max(self.seen, int(meta.get("id", 0)))
        version, sha = str(meta.get("version", "")), str(meta.get("sha256", ""))
        if release_order(version, self.running) == 0:
            return "current"
        if sha in self.judged:
            return "judged"
        response = await self._get(client, authorization, "/api/v1/release/package",
                                   {"arch": self.architecture})
        if response is None or response.status_code != 200:
            return "none"
        try:
            release = await asyncio.to_thread(self._check, response, None)
        except ReleaseRefused as exc:
            await self._refused(client, authorization, exc, response, version)
            return f"refused:{exc.code}"
        rollback = await self._rollback_package(client, authorization)
        if rollback is None:
            missing = ReleaseRefused(
                "no_rollback_package",
                f"没有正在运行的版本 {self.running} 的软件包可供回退：请先在收集端发布该版本"
                "（release publish），再发布新版本")
            await self._refused(client, authorization, missing, response,
                                release.control.version)
            return "refused:no_rollback_package"
        digest = hashlib.sha256(release.body).hexdigest()
        package = self.directory / f"{digest}.deb"
        await asyncio.to_thread(state.write_package, package, release.body)
        command = upgrader_command(self.plan, package, rollback, release.control.version,
                                   self.running, digest)
        log.info("starting the upgrader", version=release.control.version, running=self.running)
        await asyncio.to_thread(self.spawn, command, release.control.version,
                                self.directory / "upgrader.log")
        self.started = release.control.version
        self._started_at = time.monotonic()
        return "started"

    def _check(self, response: httpx.Response, want_running: str | None) -> Any:
        body = response.content
        if len(body) > MAX_PACKAGE_BYTES:
            raise ReleaseRefused("malformed", f"软件包大于 {MAX_PACKAGE_BYTES} 字节")
        return check_release(
            body, response.headers.get("X-Courtguard-Signature", ""), self.public_key,
            running_version=self.running if want_running is None else "0~",
            architecture=self.architecture, group=self.group(),
            target_group=response.headers.get("X-Courtguard-Release-Group", "*"),
            claimed_algorithm=response.headers.get("X-Courtguard-Signature-Algorithm"))

    async def _rollback_package(self, client: httpx.AsyncClient, authorization: str) -> Path | None:
        current = self.directory / state.CURRENT
        try:
            if runs(read_control(current.read_bytes()).version, self.running):
                return current
        except (OSError, DebError):
            pass
        response = await self._get(client, authorization, "/api/v1/release/package",
                                   {"arch": self.architecture, "version": self.running})
        if response is None or response.status_code != 200:
            return None
        try:
            release = await asyncio.to_thread(self._check, response, self.running)
        except ReleaseRefused as exc:
            log.warning("the running version's package is unusable", error=exc.reason)
            return None
        if not runs(release.control.version, self.running):
            return None
        digest = hashlib.sha256(release.body).hexdigest()
        path = self.directory / f"{digest}.deb"
        await asyncio.to_thread(state.write_package, path, release.body)
        return path

    async def _refused(self, client: httpx.AsyncClient, authorization: str,
                       exc: ReleaseRefused, response: httpx.Response, version: str) -> None:
        sha = hashlib.sha256(response.content).hexdigest()
        self.judged.add(sha)
        if exc.code in _QUIET:
            return
        log.warning("agent release refused", code=exc.code, reason=exc.reason)
        evidence = UpgradeFailedEvidence(
            stage="refused", reason_code=exc.code, reason=exc.reason[:500],  # type: ignore[arg-type]  # the refusal codes are the Literal the model lists
            version=version[:64] or None, running_version=self.running[:64], sha256=sha)
        await self.emit(upgrade_failed_finding(evidence))
        await self._report(client, authorization, version[:64], "refused", exc.code,
                           exc.reason[:500])
