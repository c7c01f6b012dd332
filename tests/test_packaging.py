"""A plain, non-editable ``pip install .`` into a fresh virtualenv carries the policies.

The package is built from a copy of the source tree (what ``git`` tracks, as
a release would be) and installed without ``-e``; ``courtguard-agent scan``
then runs from outside any checkout with no ``--policy-dir`` and no
``agent.toml``, so the only policies it can find are the ones inside the
installed package. The dependencies come from this test run's environment
(a path entry), not from the network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _source_copy(target: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
        text=True, check=True,
    ).stdout.splitlines()
    for name in listed:
        source = REPO / name
        if name.startswith(("artifacts/", "tests/")) or not source.is_file():
            continue
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target / name)
    return target


def test_scan_finds_the_policies_shipped_in_a_plain_install(tmp_path: Path) -> None:
    source = _source_copy(tmp_path / "src")
    fresh = tmp_path / "venv"
    venv.create(fresh, with_pip=False)
    python = fresh / "bin" / "python"
    site = Path(subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip())
    # Dependencies from this environment; the project itself only from the install below.
    (site / "courtguard_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
         str(source)],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert (site / "agent" / "policies_default" / "documents.yaml").is_file()
    assert not (site / "policies").exists()
    for package, domain in (("agent", "courtguard-agent"), ("collector", "courtguard-collector")):
        assert (site / package / "locale" / "zh_CN" / "LC_MESSAGES" / f"{domain}.mo").is_file()

    document = tmp_path / "work" / "判决书.txt"
    document.parent.mkdir()
    document.write_text("民事判决书\n原告赵某与被告钱某买卖合同纠纷一案。\n被告钱某的手机号码13812345678。\n")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("COURTGUARD_")}
    done = subprocess.run(
        [fresh / "bin" / "courtguard-agent", "scan", str(document)], capture_output=True,
        text=True, timeout=120, check=False, cwd=document.parent, env=environment,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "documents.mobile-phone" in done.stdout
    assert "does not exist" not in done.stdout + done.stderr  # the bundled policies were found
    where = subprocess.run(
        [python, "-c", "import agent.bundled_policies as b, collector.settings as s; "
         "print(b.bundled_policy_dir()); print(s.CollectorSettings(data_dir='/nonexistent')"
         ".effective_policy_dir)"],
        capture_output=True, text=True, timeout=60, check=True, cwd=tmp_path, env=environment,
    ).stdout.split()
    assert where == [str(site / "agent" / "policies_default")] * 2
