"""The detached upgrader: install, restart, wait for the new version to be healthy, else go back.

Started by the agent (``agent.upgrade.client``) as ``courtguard-agent upgrade-apply``,
outside the agent's service so it survives the restart it causes:

* with systemd running, in a transient unit (``systemd-run
  --unit=courtguard-upgrade-<version>``), also outside the agent unit's sandbox
  (``ProtectSystem=strict`` would forbid writing ``/opt`` and ``/usr``);
* without systemd, in a new session (``setsid``) that the agent's supervisor
  does not stop with the agent.

Steps, each recorded in ``result.json`` (``agent.upgrade.state``):

1. install the new package (the agent's ``upgrade_install_command``, ``dpkg -i``);
2. restart the agent: ``systemctl restart <upgrade_service>`` with systemd;
   without it, SIGTERM to the pid in ``agent.pid`` and the supervisor that runs
   the agent (as systemd's ``Restart=always`` would) starts the installed version;
3. wait up to ``upgrade_health_timeout_s`` for ``running.json`` to name the new
   version, written by a new process after it became ready;
4. healthy: the package becomes ``current.deb`` (the next upgrade's way back),
   ``installed``; otherwise the previous package is installed again, the agent
   restarted, and ``failed`` with the reason: the restored agent reports it as
   ``agent.upgrade_failed`` and to the collector.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from agent.upgrade import state
from agent.upgrade.versions import runs

#: How often the health file is looked at while waiting.
POLL_S = 0.5


@dataclass(frozen=True)
class UpgradePlan:
    """What the upgrader needs of the agent's settings, passed on its command line (a
    transient unit inherits neither the agent's environment nor its config path)."""

    data_dir: Path
    install_command: tuple[str, ...]
    service: str
    health_timeout_s: float


def systemd_running() -> bool:
    return Path("/run/systemd/system").is_dir()


def _install(plan: UpgradePlan, package: Path) -> tuple[bool, str]:
    command = [*plan.install_command, str(package)]
    try:
        done = subprocess.run(command, capture_output=True, text=True,  # noqa: S603 (the settings' install command)
                              timeout=max(plan.health_timeout_s * 2, 600), check=False,
                              env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"{command[0]}: {exc}"
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return False, f"{command[0]} 退出码 {done.returncode}：{' / '.join(tail)}"[:400]
    return True, ""


def restart(plan: UpgradePlan) -> None:
    """Restart the agent the way its service runs: systemctl, or SIGTERM for its supervisor."""
    if systemd_running():
        subprocess.run(["systemctl", "restart", plan.service],  # noqa: S603,S607 (fixed command)
                       capture_output=True, timeout=120, check=False)
        return
    pid = state.agent_pid(plan.data_dir)
    if pid is not None and pid != os.getpid() and state.is_agent(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    # Never signalled twice: the pid could be another process's by the next restart.
    (state.releases_dir(plan.data_dir) / "agent.pid").unlink(missing_ok=True)


def wait_healthy(plan: UpgradePlan, version: str, since: float) -> bool:
    deadline = time.monotonic() + plan.health_timeout_s
    path = state.releases_dir(plan.data_dir) / "running.json"
    while time.monotonic() < deadline:
        found = state.read_json(path)
        if (found is not None and runs(version, str(found.get("version", "")))
                and float(found.get("ready_at", 0)) >= since
                and state.alive(int(found.get("pid", 0)) or -1)):
            return True
        time.sleep(POLL_S)
    return False


def apply(plan: UpgradePlan, package: Path, rollback: Path, version: str,
          running: str, sha256: str) -> int:
    """Steps 1-4 of the module docstring; 0 when the new version runs, 1 when rolled back."""
    result = state.result_path(plan.data_dir)
    since = time.time()
    record = {"state": "installing", "version": version, "running_version": running,
              "sha256": sha256, "started_at": since, "pid": os.getpid()}
    state.write_json(result, record)
    installed, detail = _install(plan, package)
    if installed:
        restart(plan)
        if wait_healthy(plan, version, since):
            current = state.releases_dir(plan.data_dir) / state.CURRENT
            shutil.copyfile(package, current.with_suffix(".tmp"))
            os.replace(current.with_suffix(".tmp"), current)
            state.write_json(result, {**record, "state": "installed", "ended_at": time.time()})
            _tidy(plan, keep={current})
            return 0
        stage, code = "health", "not_healthy"
        detail = f"新版本 {version} 未在 {plan.health_timeout_s:g} 秒内报告正常"
    else:
        stage, code = "install", "install_failed"
    rolled_back, rollback_detail = _install(plan, rollback)
    reason = detail if rolled_back else f"{detail}；回退安装也失败：{rollback_detail}"
    state.write_json(result, {**record, "state": "failed", "stage": stage, "reason_code": code,
                              "reason": reason[:500], "rolled_back": rolled_back,
                              "ended_at": time.time()})
    _tidy(plan, keep={rollback, state.releases_dir(plan.data_dir) / state.CURRENT})
    restart(plan)
    return 1


def _tidy(plan: UpgradePlan, keep: set[Path]) -> None:
    """Drop verified packages that are neither current nor just installed."""
    for path in state.releases_dir(plan.data_dir).glob("*.deb"):
        if path not in keep:
            path.unlink(missing_ok=True)
