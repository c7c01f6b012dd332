"""The documents path runs on Windows: no Linux-only module on it, and Windows paths handled.

No Windows machine runs this suite, so the test takes Linux's extra modules
away instead: a fresh interpreter gets an import hook that refuses every
module Windows lacks (and the Linux-only libraries the agent uses elsewhere),
then imports every module of the documents detector, the command line and
the settings ``scan`` reads, and runs ``scan`` on a real document. An import
of any refused module by the project or a library fails the run, wherever it
hides; the standard library's own platform branches are its business.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath

import pytest

from agent.detectors.documents.checker.command import part_label, scanned
from tests.agent.detectors.documents.conftest import REPO

#: Modules a Windows Python does not have, and the Linux-only libraries the agent imports.
LINUX_ONLY = (
    "fcntl", "resource", "pwd", "grp", "termios", "pty", "tty", "posix_ipc", "crypt", "spwd",
    "syslog", "_posixshmem", "pyroute2", "systemd", "nftables", "inotify_simple", "pyinotify",
)

WITHOUT_LINUX = r"""
import importlib.abc, json, os, pkgutil, sys, sysconfig
REFUSED = set(json.loads(sys.argv[1]))
# The standard library picks its own platform branch (subprocess imports fcntl on POSIX and
# _winapi on Windows): only imports made by the project's code or by a library are refused.
STDLIB = os.path.realpath(sysconfig.get_paths()["stdlib"]) + os.sep

def importer():
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename.startswith("<frozen"):
        frame = frame.f_back
    return os.path.realpath(frame.f_code.co_filename) if frame is not None else ""

already = sorted(REFUSED & {name.split(".")[0] for name in sys.modules})
for name in list(sys.modules):
    if name.split(".")[0] in REFUSED:
        del sys.modules[name]
tried = []
class RefuseLinuxOnly(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in REFUSED and not importer().startswith(STDLIB):
            tried.append(name)
            raise ModuleNotFoundError(f"No module named {name!r} (refused: Linux only)", name=name)
        return None
sys.meta_path.insert(0, RefuseLinuxOnly())

import agent.cli, agent.settings, agent.bundled_policies
import agent.detectors.documents as documents
for module in pkgutil.walk_packages(documents.__path__, "agent.detectors.documents."):
    __import__(module.name)
from agent.cli import main
code = main(["scan", "--json", "--policy-dir", sys.argv[2], sys.argv[3]])
print(json.dumps({"code": code, "tried": tried, "already": already}), file=sys.stderr)
"""


def test_documents_path_imports_and_scans_without_linux_only_modules(tmp_path: Path) -> None:
    document = tmp_path / "判决.txt"
    document.write_text("民事判决书\n原告赵某与被告钱某买卖合同纠纷一案。\n被告钱某的手机号码13812345678。\n")
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_LINUX, json.dumps(LINUX_ONLY), str(REPO / "policies"),
         str(document)],
        capture_output=True, text=True, timeout=120, check=False, cwd=REPO,
    )
    assert done.returncode == 0, done.stderr  # a refused import raises before the outcome
    outcome = json.loads(done.stderr.strip().splitlines()[-1])
    assert outcome["tried"] == [], f"the documents path imports Linux-only {outcome['tried']}"
    assert outcome["code"] == 1
    report = json.loads(done.stdout)
    assert report["verdict"] == "needs_redaction"
    assert [f["rule_id"] for f in report["findings"]] == ["documents.mobile-phone"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (PureWindowsPath(r"C:\法院\2024\判决书.DOCX"), True),
        (PureWindowsPath(r"\\fileserver\公开\民初1号.pdf"), True),
        (PureWindowsPath(r"D:\公开\~$判决书.docx"), False),
        (PureWindowsPath(r"D:\公开\清单.xlsx"), False),
        (PureWindowsPath("D:/混用/斜杠/a.txt"), True),
        (PurePosixPath("/srv/公开/b.OFD"), True),
    ],
)
def test_which_files_a_directory_scan_reads_on_either_system(
    path: PurePath, expected: bool
) -> None:
    assert scanned(path) is expected


def test_part_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    parts = ("body", "header:2", "page:3", "deleted:footer:1")
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    assert [part_label(p) for p in parts] == ["正文", "页眉2", "第3页", "页脚1修订中删除的文字"]
    monkeypatch.setenv("LANG", "C.UTF-8")
    assert [part_label(p) for p in parts] == [
        "body", "header 2", "page 3", "footer 1, text deleted in tracked changes"]
