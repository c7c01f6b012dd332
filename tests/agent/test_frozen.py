"""Children of the agent run from a virtualenv and from the packaged, frozen executable.

The frozen build has no ``python -m``: ``agent.frozen.child_command`` gives the
executable's hidden sub-command instead, and ``agent.frozen.main`` (the frozen
entry point) runs the child. Here the entry point runs under this interpreter
the way the frozen executable runs it; tests/packaging/test_agent_deb.py runs
the real frozen build.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent import frozen

ENTRY = Path(__file__).resolve().parents[2] / "packaging" / "agent" / "entry.py"


def test_every_child_the_agent_starts_is_known_to_the_frozen_entry() -> None:
    """No ``sys.executable -m`` outside agent.frozen: each child goes through child_command."""
    agent_dir = Path(frozen.__file__).parent
    offenders = [
        str(path.relative_to(agent_dir)) for path in agent_dir.rglob("*.py")
        if path.name != "frozen.py" and "sys.executable" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []
    for module in frozen.CHILD_MODULES:
        assert "\nif __name__ == \"__main__\":" in Path(
            agent_dir.parent, *module.split(".")
        ).with_suffix(".py").read_text(encoding="utf-8"), module


def test_child_command_uses_the_hidden_subcommand_only_when_frozen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = "agent.evidence.capture"
    assert frozen.child_command(module, "a") == [sys.executable, "-m", module, "a"]
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert frozen.child_command(module, "a") == [sys.executable, frozen.RUN_MODULE, module, "a"]
    with pytest.raises(ValueError, match="not a child module"):
        frozen.child_command("agent.cli")


def test_entry_point_runs_the_document_child(tmp_path: Path) -> None:
    document = tmp_path / "判决书.txt"
    document.write_text("民事判决书\n原告赵某。\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(ENTRY), frozen.RUN_MODULE,
         "agent.detectors.documents.checker.child", str(document), "100000"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "原告赵某" in json.loads(done.stdout)["parts"][0]["text"]


def test_entry_point_passes_a_childs_exit_status_and_refuses_other_modules() -> None:
    bad_order = subprocess.run(
        [sys.executable, str(ENTRY), frozen.RUN_MODULE, "agent.evidence.capture", "{}", "/x"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert bad_order.returncode == 2 and "bad capture order" in bad_order.stderr
    refused = subprocess.run(
        [sys.executable, str(ENTRY), frozen.RUN_MODULE, "os"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert refused.returncode == 2 and "agent.evidence.capture" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_entry_point_without_the_hidden_argument_is_the_cli() -> None:
    done = subprocess.run(
        [sys.executable, str(ENTRY), "--help"], capture_output=True, text=True, timeout=60,
        check=False,
    )
    assert done.returncode == 0 and "emit-test" in done.stdout


def test_programs_the_frozen_agent_runs_get_the_callers_library_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The bundled libraries' directory never reaches nft, journalctl or soffice."""
    monkeypatch.setenv("LD_LIBRARY_PATH", "/opt/courtguard/agent/_internal")
    monkeypatch.delenv("LD_LIBRARY_PATH_ORIG", raising=False)
    frozen.restore_library_path()
    assert "LD_LIBRARY_PATH" not in os.environ
    monkeypatch.setenv("LD_LIBRARY_PATH", "/opt/courtguard/agent/_internal:/usr/local/lib")
    monkeypatch.setenv("LD_LIBRARY_PATH_ORIG", "/usr/local/lib")
    frozen.restore_library_path()
    assert os.environ["LD_LIBRARY_PATH"] == "/usr/local/lib"
    assert "LD_LIBRARY_PATH_ORIG" not in os.environ


def test_a_frozen_child_gets_no_pyinstaller_state_of_its_parent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Inherited ``_PYI_*`` would make the child's loader skip its bundled libraries."""
    monkeypatch.setenv("_PYI_APPLICATION_HOME_DIR", "/opt/courtguard/agent/_internal")
    monkeypatch.setenv("_PYI_PARENT_PROCESS_LEVEL", "1")
    monkeypatch.setenv("COURTGUARD_AGENT_LOG_FORMAT", "json")
    assert frozen.child_environment() is None, "a virtualenv child inherits everything"
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    environment = frozen.child_environment()
    assert environment is not None
    assert not [name for name in environment if name.startswith("_PYI_")]
    assert environment["PYINSTALLER_RESET_ENVIRONMENT"] == "1"
    assert environment["COURTGUARD_AGENT_LOG_FORMAT"] == "json"
    assert os.environ["_PYI_PARENT_PROCESS_LEVEL"] == "1", "the agent's own state is kept"


def test_every_child_gets_its_environment_from_agent_frozen() -> None:
    """Who starts a child with ``child_command`` passes ``child_environment`` too."""
    agent_dir = Path(frozen.__file__).parent
    starters = [
        path for path in agent_dir.rglob("*.py")
        if path.name != "frozen.py" and "child_command(" in path.read_text(encoding="utf-8")
    ]
    assert starters, "the evidence service and the documents source start children"
    missing = [
        str(path.relative_to(agent_dir)) for path in starters
        if "env=child_environment()" not in path.read_text(encoding="utf-8")
    ]
    assert missing == []
    upgrade_client = (agent_dir / "upgrade" / "client.py").read_text(encoding="utf-8")
    assert "env=child_environment()" in upgrade_client
    assert "_PYI_" not in upgrade_client


def test_the_agent_cli_command_is_the_binary_itself_when_frozen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert frozen.agent_command("status") == [sys.executable, "-m", "agent.cli", "status"]
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert frozen.agent_command("status") == [sys.executable, "status"]
