"""Child processes of the agent, from a virtualenv or from the packaged (frozen) build.

The daemon starts short-lived children for heavy work (the evidence capture with
scapy, the document extraction child) so their libraries never live in the
daemon. From a virtualenv a child is ``python -m MODULE``; the packaged agent
has no ``python``: its one executable is the agent itself, so it takes a hidden
first argument that runs one of the known child modules instead of the CLI.
``multiprocessing`` workers (``scan``'s pool) are handled by
``multiprocessing.freeze_support`` in the same entry point.

The frozen executable's loader points ``LD_LIBRARY_PATH`` at the bundled
libraries; the dynamic linker has read it by the time Python runs, so the
entry point puts the caller's value back for the programs the agent runs
(``nft``, ``journalctl``, ``soffice``), which must load the system's own
libraries, not the package's copies.

A frozen executable started by the frozen agent (a child, the upgrader) must not
inherit the bootloader's ``_PYI_*`` variables: its own loader would take itself
for the agent's re-executed stage and skip loading its bundled libraries
(``libssl``). ``child_environment`` is the one environment every such child gets.
"""

from __future__ import annotations

import os
import runpy
import sys
from collections.abc import Sequence
from typing import Final

#: The hidden first argument of the frozen executable; never shown in ``--help``.
RUN_MODULE: Final = "--courtguard-run-module"
#: Every module a child runs; the packaging script bundles each of them.
CHILD_MODULES: Final = (
    "agent.evidence.capture",
    "agent.detectors.documents.checker.child",
)


def is_frozen() -> bool:
    return bool(getattr(sys, "frozen", False))


def child_command(module: str, *arguments: str) -> list[str]:
    """The argv that runs ``module`` as ``__main__`` with ``arguments``, frozen or not."""
    if module not in CHILD_MODULES:
        raise ValueError(f"{module} is not a child module: add it to agent.frozen.CHILD_MODULES")
    if is_frozen():
        return [sys.executable, RUN_MODULE, module, *arguments]
    return [sys.executable, "-m", module, *arguments]


def agent_command(*arguments: str) -> list[str]:
    """The argv that runs this installation's ``courtguard-agent`` CLI (the upgrader)."""
    if is_frozen():
        return [sys.executable, *arguments]
    return [sys.executable, "-m", "agent.cli", *arguments]


def child_environment() -> dict[str, str] | None:
    """The environment for a child of this process; None (inherit) from a virtualenv.

    ``LD_LIBRARY_PATH`` is already the caller's (``main`` restored it at start); the
    child's own loader points it at the bundled libraries again.
    """
    if not is_frozen():
        return None
    environment = {k: v for k, v in os.environ.items() if not k.startswith("_PYI_")}
    environment["PYINSTALLER_RESET_ENVIRONMENT"] = "1"
    return environment


def restore_library_path() -> None:
    """Give programs this process runs the ``LD_LIBRARY_PATH`` the agent was started with."""
    original = os.environ.pop("LD_LIBRARY_PATH_ORIG", None)
    if original is None:
        os.environ.pop("LD_LIBRARY_PATH", None)
    else:
        os.environ["LD_LIBRARY_PATH"] = original


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the frozen executable: a child module, else ``courtguard-agent``."""
    import multiprocessing

    if is_frozen():
        restore_library_path()

    # A spawned worker of the frozen build re-enters here; this runs it and exits.
    multiprocessing.freeze_support()
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == [RUN_MODULE]:
        if len(arguments) < 2 or arguments[1] not in CHILD_MODULES:
            print(f"courtguard-agent: {RUN_MODULE} takes one of {', '.join(CHILD_MODULES)}",
                  file=sys.stderr)
            return 2
        module = arguments[1]
        sys.argv = [module, *arguments[2:]]
        try:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        except SystemExit as done:
            code = done.code
            if code is None or isinstance(code, int):
                return code or 0
            print(code, file=sys.stderr)
            return 1
        return 0
    from agent.cli import main as cli_main

    return cli_main(arguments)
