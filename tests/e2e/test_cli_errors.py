"""What a person sees when they get something wrong, with real processes and a real collector.

Each case runs the installed ``courtguard-agent`` / ``courtguard-collector`` as a
new user would and reads its output: a message and a hint, the documented exit
code (docs/cli.md), never a traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import BIN, Agent, Collector

EXIT_ALREADY_RUNNING = 3
NOBODY = 65534
CLEAN = ("北京市朝阳区人民法院\n民事判决书\n(2024)京0105民初1号\n原告赵某，男。\n被告钱某，女。\n"
         "原告赵某与被告钱某买卖合同纠纷一案。\n审判员  孙立\n")


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    """One HTTPS collector on SQLite: these cases are about the command lines, not the store."""
    instance = Collector(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'collector.db'}")
    instance.init()
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture
def agent(tmp_path: Path, collector: Collector) -> Iterator[Agent]:
    instance = Agent(home=tmp_path / "ws", collector=collector)
    instance.home.mkdir()
    instance.enroll()
    yield instance
    instance.stop()


def _no_traceback(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result.stderr


def test_a_second_agent_on_one_data_dir_refuses_and_names_the_first(
    agent: Agent, tmp_path: Path
) -> None:
    agent.start()
    assert agent.process is not None
    first_pid = agent.process.pid

    second = agent.cli("run", check=False)
    err = _no_traceback(second)
    assert second.returncode == EXIT_ALREADY_RUNNING, err
    assert f"pid {first_pid}" in err and str(agent.data_dir) in err
    assert "hint: stop it first" in err
    assert agent.process.poll() is None  # the first one is untouched

    # status, emit-test and scan take no lock: they work beside the running daemon.
    status = agent.cli("status", "--json")
    assert json.loads(status.stdout)["agent_id"] == agent.agent_id
    assert agent.cli("emit-test", "--count", "2").returncode == 0
    document = tmp_path / "判决书.txt"
    document.write_text(CLEAN, encoding="utf-8")
    assert agent.cli("scan", str(document), check=False).returncode == 0

    # The kernel drops the lock with its holder, however it ends: no stale lock after a kill.
    agent.stop(signal.SIGKILL)
    agent.start()
    assert agent.process is not None
    assert (agent.data_dir / "agent.lock").read_text().strip() == str(agent.process.pid)


def test_enrollment_mistakes_get_a_message_and_a_hint(
    collector: Collector, tmp_path: Path
) -> None:
    newcomer = Agent(home=tmp_path / "new", collector=collector)
    newcomer.home.mkdir()
    token = collector.create_token()
    base = ["enroll", "--collector", collector.url]

    short = newcomer.cli(*base, "--token", "abc", "--ca", str(collector.ca_file), check=False)
    assert short.returncode == 2 and "3 characters long" in _no_traceback(short)

    wrong = newcomer.cli(*base, "--token", "x" * 30, "--ca", str(collector.ca_file), check=False)
    assert wrong.returncode == 2
    assert "does not know this enrollment token" in _no_traceback(wrong)

    missing = newcomer.cli(*base, "--token", token, "--ca", str(tmp_path / "nope.pem"),
                           check=False)
    assert missing.returncode == 2 and "nope.pem does not exist" in _no_traceback(missing)
    assert "hint: copy tls/ca.pem" in missing.stderr

    not_pem = tmp_path / "not.pem"
    not_pem.write_text("this is not a certificate\n")
    garbage = newcomer.cli(*base, "--token", token, "--ca", str(not_pem), check=False)
    assert garbage.returncode == 2 and "is not a PEM certificate" in _no_traceback(garbage)

    # A CA that did not sign this collector's certificate: the TLS handshake fails.
    other = Collector(home=tmp_path / "other", database_url=f"sqlite:///{tmp_path / 'o.db'}")
    other.init()
    foreign = newcomer.cli(*base, "--token", token, "--ca", str(other.ca_file), check=False)
    err = _no_traceback(foreign)
    assert foreign.returncode == 2 and "did not sign" in err and "hint: use the CA" in err

    with socket.socket() as closed:  # a loopback port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    gone = newcomer.cli("enroll", "--collector", f"https://127.0.0.1:{port}", "--token", token,
                        "--ca", str(collector.ca_file), check=False)
    err = _no_traceback(gone)
    assert gone.returncode == 2 and "cannot reach the collector" in err and "hint:" in err

    assert not (newcomer.data_dir / "credentials.json").exists()
    # The token was never spent by the failures: it still enrolls.
    good = newcomer.cli(*base, "--token", token, "--ca", str(collector.ca_file))
    assert "enrolled as agent" in good.stdout


def test_a_typo_in_the_config_file_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(f'data_dir = "{tmp_path}"\nheartbeat_intervl_s = 30\nspool_max_bytes = 5\n')
    result = subprocess.run([str(BIN / "courtguard-agent"), "status", "--config", str(config)],
                            capture_output=True, text=True, timeout=60, check=False)
    err = _no_traceback(result)
    assert result.returncode == 2
    assert "heartbeat_intervl_s: unknown setting" in err
    assert "spool_max_bytes: Input should be greater than or equal to 65536" in err
    assert "hint:" in err and "packaging/examples/agent.toml" in err


def test_serve_on_a_port_in_use_says_so(collector: Collector) -> None:
    second = collector.cli("serve", check=False)
    err = _no_traceback(second)
    assert second.returncode == 1, err
    assert f"port {collector.port} on 127.0.0.1 is already in use" in err
    assert "hint:" in err and "--port" in err
    assert collector.process is not None and collector.process.poll() is None


def _as_nobody(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [shutil.which("setpriv") or "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}",
         "--clear-groups", *command],
        capture_output=True, text=True, env=env, timeout=60, check=False)


def test_status_without_permission_says_who_may_run_it(agent: Agent, collector: Collector) -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        reason = "needs root and setpriv to run a command as another user"
        if os.environ.get("CI") == "true":
            pytest.fail(f"must run on CI: {reason}")
        pytest.skip(reason)
    # Let nobody reach the installed commands but not the data directories.
    agent.home.parent.chmod(0o755)
    agent.home.chmod(0o755)
    agent.data_dir.chmod(0o700)

    status = _as_nobody([str(BIN / "courtguard-agent"), "status"], agent.env())
    err = _no_traceback(status)
    assert status.returncode == 2
    assert "permission denied" in err and str(agent.data_dir) in err
    assert "hint: run it as root" in err

    listing = _as_nobody([str(BIN / "courtguard-collector"), "agent", "list"], collector.env())
    err = _no_traceback(listing)
    assert listing.returncode == 1 and "error:" in err and "hint:" in err, err
