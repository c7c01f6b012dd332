"""The collector's offline bundle: built from this checkout, installed with no network, serving.

install.sh runs inside a fresh network namespace that has nothing but loopback,
so an install that reached for an index or any other host would fail: it proves
the bundle carries every wheel. Building the bundle does use the package index
(as any release build does); everything after that is offline.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import sys
import tarfile
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import NotifySocket, free_port, spawn, stop_process
from tests.e2e.netns import require_root, scratch_netns

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "packaging" / "collector" / "build-bundle.sh"

pytestmark = [pytest.mark.e2e, pytest.mark.root]


def _base_python() -> str:
    """The interpreter this virtualenv was made from: the bundle is for its minor version."""
    return str(getattr(sys, "_base_executable", None) or shutil.which("python3"))


@pytest.mark.timeout(3600)  # a ceiling for a wedged pip, not a speed requirement
def test_bundle_installs_offline_and_the_installed_collector_serves_https(
    tmp_path: Path,
) -> None:
    require_root()
    built = subprocess.run(
        ["bash", str(BUILD), "--out", str(tmp_path / "out"), "--python", sys.executable],
        capture_output=True, text=True, check=False, timeout=3000,
    )
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
    bundle = Path(built.stdout.strip().splitlines()[-1])
    major, minor = sys.version_info[:2]
    assert bundle.name.startswith("courtguard-collector-")
    assert bundle.name.endswith(f"-linux-{os.uname().machine}-cp{major}{minor}.tar.gz")
    with tarfile.open(bundle) as archive:
        archive.extractall(tmp_path / "unpacked", filter="data")
    unpacked = next((tmp_path / "unpacked").iterdir())
    wheels = {p.name.split("-")[0].lower() for p in (unpacked / "wheels").glob("*.whl")}
    assert {"courtguard", "fastapi", "uvicorn", "sqlalchemy", "psycopg_binary",
            "cryptography"} <= wheels

    root = tmp_path / "target"
    with scratch_netns("cgbundle") as netns:
        links = subprocess.run(["ip", "-n", netns, "-o", "link"], capture_output=True, text=True,
                               check=True).stdout.splitlines()
        assert [line.split(":")[1].strip() for line in links] == ["lo"]
        installed = subprocess.run(
            ["ip", "netns", "exec", netns, "bash", str(unpacked / "install.sh"),
             "--prefix", str(root / "opt"), "--config-dir", str(root / "etc"),
             "--data-dir", str(root / "data"), "--no-systemd", "--no-link"],
            env={**{k: v for k, v in os.environ.items() if not k.startswith("COURTGUARD_")},
                 "PYTHON": _base_python()},
            capture_output=True, text=True, check=False, timeout=3000,
        )
    assert installed.returncode == 0, installed.stdout[-4000:] + installed.stderr[-4000:]
    assert "安装完成" in installed.stdout and "cgk_" in installed.stdout
    assert (root / "etc" / "collector.toml").is_file()
    assert (root / "data" / "tls" / "ca.pem").is_file()

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURTGUARD_")}
    env.update({"COURTGUARD_COLLECTOR_LISTEN_HOST": "127.0.0.1",
                "COURTGUARD_COLLECTOR_LISTEN_PORT": str(port)})
    notify = NotifySocket()
    log = tmp_path / "collector.log"
    collector = root / "opt" / "venv" / "bin" / "courtguard-collector"
    try:
        process = spawn("installed collector",
                        [str(collector), "serve", "--config", str(root / "etc" / "collector.toml")],
                        {**env, "NOTIFY_SOCKET": str(notify.path)}, log)
        try:
            notify.wait_ready(process, "installed collector", lambda: log.read_text())
            trust = ssl.create_default_context(cafile=str(root / "data" / "tls" / "ca.pem"))
            with httpx.Client(verify=trust) as client:
                answer = client.get(f"https://127.0.0.1:{port}/healthz")
            assert answer.status_code == 200, answer.text
        finally:
            stop_process(process)
    finally:
        notify.close()
    # The installed code is the bundle's, not this checkout's.
    where = subprocess.run(
        [str(root / "opt" / "venv" / "bin" / "python"), "-c",
         "import collector; print(collector.__file__)"],
        capture_output=True, text=True, check=True, env=env, cwd=tmp_path,
    ).stdout
    assert where.startswith(str(root / "opt"))
