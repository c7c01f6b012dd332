"""Every module of agent/ and collector/ imports first, and their imports form no cycle.

A cycle works or breaks depending on which module of it a process imports
first ("cannot import name ... from partially initialized module"), so the
first test imports each module on its own, and the second keeps cycles from
coming back at all.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("agent", "collector")


def _modules() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _top_level_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """Imports run when the module is imported: the body, its ``if``/``try`` blocks.

    Imports inside functions and classes run later, on first use (a source
    importing its I/O readers when the daemon starts it, say), once every
    module is complete, so they cannot break an import; they are left out.
    So are ``if TYPE_CHECKING:`` blocks, which never run.
    """
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop(0)
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            pending.extend(node.orelse if _type_checking(node) else node.body + node.orelse)
        elif isinstance(node, ast.Try):
            pending.extend(node.body + node.orelse + node.finalbody)
            for handler in node.handlers:
                pending.extend(handler.body)


def _graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        edges: set[str] = set()
        for node in _top_level_imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = name.split(".")
                    anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                    base = ".".join([*anchor, base] if base else anchor)
                # ``from package import module`` imports the module; otherwise a name of base.
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                    for alias in node.names
                ]
            edges.update(target for target in targets if target in modules and target != name)
        graph[name] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component: list[str] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_the_cycle_finder_sees_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_among_agent_and_collector_modules() -> None:
    cycles = _cycles(_graph(_modules()))
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


# One interpreter for every module: before each import it forgets every project module it
# has, so each is imported first; third-party packages stay loaded, which keeps it fast.
_IMPORT_EACH = """
import importlib, sys, traceback
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m.split(".")[0] in ("agent", "collector")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except BaseException:
        failed.append(name + ":\\n" + traceback.format_exc(limit=3))
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


#: Alembic loads these itself, with its migration context set up; they are not imported.
_RUN_BY_ALEMBIC = "collector.migrations."


def test_every_module_imports_first_in_a_fresh_interpreter() -> None:
    names = sorted(
        name for name in _modules()
        if not name.startswith(_RUN_BY_ALEMBIC)
        and not name.endswith(".__main__")  # ``python -m`` entry points run when imported
    )
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_EACH, *names],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, (
        f"modules that fail imported first:\n{result.stdout}{result.stderr}"
    )


# What ``courtguard-agent run`` loads to start and reach its collector: the daemon, the
# collector client and the HTTP transport beneath it (httpcore, imported on first use).
_DAEMON_LOADS = """
import sys
{prepare}
import agent.daemon, agent.collector_http, agent.detectors.accounts.source
import agent.detectors.documents.source, agent.detectors.outreach.source
import httpx
httpx.AsyncHTTPTransport()
print(",".join(sorted(m for m in {names} if m in sys.modules and sys.modules[m] is not None)))
"""
#: Never needed by an idle daemon: httpcore's trio backend (the daemon runs on asyncio) and
#: tarfile (read only when a release is offered, in ``agent.upgrade.deb``).
_IDLE_DAEMON_NEVER_LOADS = ("trio", "tarfile")


def _loaded_by_daemon(prepare: str) -> str:
    code = _DAEMON_LOADS.format(prepare=prepare, names=_IDLE_DAEMON_NEVER_LOADS)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, check=True, timeout=120)
    return result.stdout.strip()


def test_the_daemon_process_loads_neither_trio_nor_tarfile() -> None:
    """The run command hides trio, which httpcore would import where it is installed, and
    tarfile loads only with a release to read."""
    assert _loaded_by_daemon("import agent.cli; agent.cli.hide_unused_modules()") == ""


def test_without_the_hiding_httpcore_imports_trio_where_installed() -> None:
    """The test above can fail: in this virtualenv (trio comes with selenium) the same
    imports without the run command's hiding load trio."""
    import importlib.util

    if importlib.util.find_spec("trio") is None:
        pytest.skip("trio is not installed here, so httpcore has none to import")
    assert _loaded_by_daemon("") == "trio"
