"""Build ``courtguard-agent_<version>_<arch>.deb`` from a checkout, carrying its own Python.

Usage (normally through ``packaging/agent/build-deb.sh``)::

    build_agent_deb.py [--version V] [--out DIR] [--build-dir DIR | --reuse-build DIR]
                       [--preseed enroll.toml] [--compress xz|gzip|none]

Two stages:

1. *Freeze*: a private virtualenv gets the project (a plain, non-editable
   install, so the shipped policies and checker data are package data) and
   PyInstaller from ``constraints.txt``; PyInstaller turns ``agent.frozen`` into
   a one-folder build: one executable plus ``_internal/`` with the interpreter,
   the compiled bytecode of every module and the extension libraries. The tree
   is kept in ``--build-dir`` with a digest of the sources that made it and is
   reused while the sources are unchanged.
2. *Pack*: the tree is copied under ``/opt/courtguard/agent``, stamped with the
   package version (the ``courtguard`` distribution metadata inside it, which
   ``agent.version`` reads), and packed with the unit, the configuration and
   the maintainer scripts by ``dpkg-deb --root-owner-group --build``.

``--reuse-build DIR`` skips stage 1 and packs an existing one-folder tree
under another version in seconds (tests make releases N, N+1, N+2 this way).
The architecture is the builder's (``dpkg --print-architecture``): PyInstaller
freezes the interpreter it runs on, so an arm64 or loongarch64 builder makes
that architecture's package. The last line on stdout is the package's path.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import venv
from pathlib import Path
from typing import Final

REPO: Final = Path(__file__).resolve().parents[1]
HERE: Final = REPO / "packaging" / "agent"
PACKAGE: Final = "courtguard-agent"
#: Where the one-folder build lives on the workstation.
INSTALL_DIR: Final = "/opt/courtguard/agent"
EXECUTABLE: Final = f"{INSTALL_DIR}/{PACKAGE}"
UNIT: Final = "courtguard-agent.service"
#: The unit in systemd/ names the virtualenv install; the package's names its own binary.
VENV_EXEC: Final = "/opt/courtguard/venv/bin/courtguard-agent"
#: Policy kinds an agent never reads; the package leaves them out of /etc/courtguard/policies.
COLLECTOR_ONLY_POLICIES: Final = ("alerting.yaml",)
#: What the frozen build is made from; a change to any of these makes a new build.
SOURCES: Final = ("agent", "policies", "packaging", "pyproject.toml", "setup.py",
                  "constraints.txt", "MANIFEST.in")
#: Versions both Debian and Python (PEP 440) order the same way.
VERSION_PATTERN: Final = re.compile(r"^[0-9]+(\.[0-9]+)*(\+[a-z0-9]+(\.[a-z0-9]+)*)?$")


class BuildError(Exception):
    """A build that cannot go on; the message says what to do."""


def log(message: str) -> None:
    print(f"[build-deb] {message}", file=sys.stderr, flush=True)


def run(argv: list[str], **kwargs: object) -> None:
    log(" ".join(argv[:6]) + (" ..." if len(argv) > 6 else ""))
    done = subprocess.run(argv, check=False, **kwargs)  # type: ignore[call-overload]  # noqa: S603
    if done.returncode != 0:
        raise BuildError(f"{argv[0]} failed with exit status {done.returncode}")


def project_version() -> str:
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    found = re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)
    if found is None:
        raise BuildError("pyproject.toml has no version")
    return found.group(1)


def architecture() -> str:
    try:
        return subprocess.run(
            ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True,  # noqa: S607
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        raise BuildError("dpkg --print-architecture failed: build on Debian, UOS or Kylin") from exc


def source_digest() -> str:
    """SHA-256 over the files the frozen build is made from (tracked and untracked, not ignored)."""
    listed = subprocess.run(  # noqa: S603 (fixed program, our own path list)
        ["git", "ls-files", "-co", "--exclude-standard", "--", *SOURCES],  # noqa: S607
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    digest = hashlib.sha256(f"{sys.version}\n{architecture()}\n".encode())
    for name in sorted(set(listed)):
        path = REPO / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


# -- stage 1: freeze ---------------------------------------------------------------------------


def freeze(build_dir: Path) -> Path:
    """The one-folder tree for the current sources, built now or reused from ``build_dir``.

    Two builds into one ``build_dir`` at once (two test workers, two admins) take turns on
    a lock in it: the second waits, then finds the first's tree and reuses it.
    """
    build_dir.mkdir(parents=True, exist_ok=True)
    with (build_dir / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _freeze_locked(build_dir)


def _freeze_locked(build_dir: Path) -> Path:
    digest = source_digest()
    tree = build_dir / PACKAGE
    stamp = build_dir / "source-digest"
    if (tree / PACKAGE).is_file() and stamp.is_file() and stamp.read_text().strip() == digest:
        log(f"reusing the one-folder build in {tree} (sources unchanged)")
        return tree
    build_dir.mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)
    python = _build_venv(build_dir / "venv")
    from_source = _clean_source(build_dir / "source")
    run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "-c", str(REPO / "constraints.txt"), f"{from_source}[package]"])
    sys.path.insert(0, str(REPO))
    from agent.frozen import CHILD_MODULES

    work = build_dir / "work"
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(build_dir / "dist", ignore_errors=True)
    arguments = [
        # No --clean: PyInstaller's cache holds stripped copies of the libraries, each checked
        # against the digest of its source before reuse; a rebuild strips only what changed.
        str(python), "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
        "--onedir", "--name", PACKAGE,
        # Symbols are for debugging the builder's libraries; the workstation only runs them.
        "--strip",
        "--distpath", str(build_dir / "dist"), "--workpath", str(work),
        "--specpath", str(work),
        # importlib.metadata answers agent.version from this; the pack stage restamps it.
        "--copy-metadata", "courtguard",
        # The detectors are imported by name (agent.detector), the children run by name.
        "--collect-submodules", "agent",
        "--collect-data", "agent",
        "--collect-data", "chinese_calendar",
        "--collect-data", "tzdata",
        "--collect-submodules", "scapy.layers",
        # The collector and the test tools are never part of the agent.
        "--exclude-module", "collector", "--exclude-module", "tkinter",
        "--exclude-module", "pytest",
    ]
    for module in CHILD_MODULES:
        arguments += ["--hidden-import", module]
    run([*arguments, str(HERE / "entry.py")], cwd=build_dir,
        env={**os.environ, "PYINSTALLER_CONFIG_DIR": str(build_dir / "pyinstaller-cache")})
    shutil.rmtree(tree, ignore_errors=True)
    shutil.move(str(build_dir / "dist" / PACKAGE), tree)
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(build_dir / "source", ignore_errors=True)
    stamp.write_text(digest + "\n")
    return tree


def _build_venv(target: Path) -> Path:
    python = target / "bin" / "python"
    if not python.is_file():
        log(f"creating the build virtualenv {target}")
        venv.create(target, with_pip=True, clear=True)
    return python


def _clean_source(target: Path) -> Path:
    """A copy of what git would ship: no .venv, caches or artifacts enter the package."""
    shutil.rmtree(target, ignore_errors=True)
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],  # noqa: S607
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    for name in listed:
        source = REPO / name
        if name.startswith(("tests/", "bench/", "artifacts/", "docs/")) or not source.is_file():
            continue
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target / name)
    return target


# -- stage 2: pack -----------------------------------------------------------------------------


def pack(tree: Path, version: str, out: Path, preseed: Path | None, compress: str) -> Path:
    if not (tree / PACKAGE).is_file() or not (tree / "_internal").is_dir():
        raise BuildError(f"{tree} is not a one-folder build (no {PACKAGE} and _internal/ in it)")
    arch = architecture()
    out.mkdir(parents=True, exist_ok=True)
    deb = out / f"{PACKAGE}_{version}_{arch}.deb"
    with tempfile.TemporaryDirectory(prefix="courtguard-deb-") as scratch:
        root = Path(scratch) / "root"
        os.umask(0o022)
        _stage_tree(tree, root / INSTALL_DIR.lstrip("/"), version)
        (root / "usr/bin").mkdir(parents=True)
        (root / "usr/bin" / PACKAGE).symlink_to(EXECUTABLE)
        conffiles = _stage_configuration(root, preseed)
        _stage_unit(root)
        _stage_docs(root, version)
        control = root / "DEBIAN"
        control.mkdir()
        (control / "control").write_text(_control(root, version, arch), encoding="utf-8")
        (control / "conffiles").write_text("".join(f"{c}\n" for c in conffiles))
        for script in ("postinst", "prerm", "postrm"):
            shutil.copyfile(HERE / script, control / script)
            (control / script).chmod(0o755)
        compression = {"xz": ["-Zxz"], "gzip": ["-Zgzip", "-z6"], "none": ["-Znone"]}[compress]
        run(["dpkg-deb", "--root-owner-group", *compression, "--build", str(root), str(deb)],
            stdout=subprocess.DEVNULL)
    return deb


def _stage_tree(tree: Path, target: Path, version: str) -> None:
    shutil.copytree(tree, target, symlinks=True)
    internal = target / "_internal"
    stamped = [p for p in internal.glob("courtguard-*.dist-info") if p.is_dir()]
    if len(stamped) != 1:
        raise BuildError(f"{tree}: expected one courtguard-*.dist-info in _internal/")
    metadata = stamped[0] / "METADATA"
    text = re.sub(r"^Version: .*$", f"Version: {version}", metadata.read_text(encoding="utf-8"),
                  count=1, flags=re.MULTILINE)
    metadata.write_text(text, encoding="utf-8")
    stamped[0].rename(internal / f"courtguard-{version}.dist-info")
    for path in target.rglob("*"):
        if path.is_file() and not path.is_symlink():
            path.chmod(0o755 if os.access(path, os.X_OK) else 0o644)
        elif path.is_dir():
            path.chmod(0o755)


def _stage_configuration(root: Path, preseed: Path | None) -> list[str]:
    etc = root / "etc/courtguard"
    policies = etc / "policies"
    policies.mkdir(parents=True)
    conffiles = ["/etc/courtguard/agent.toml"]
    shutil.copyfile(HERE / "agent.toml", etc / "agent.toml")
    (etc / "agent.toml").chmod(0o640)
    for policy in sorted((REPO / "policies").glob("*.yaml")):
        if policy.name in COLLECTOR_ONLY_POLICIES:
            continue
        shutil.copyfile(policy, policies / policy.name)
        (policies / policy.name).chmod(0o644)
        conffiles.append(f"/etc/courtguard/policies/{policy.name}")
    if preseed is not None:
        # Collector URL, CA and a group token: a secret, readable by root only.
        shutil.copyfile(preseed, etc / "enroll.toml")
        (etc / "enroll.toml").chmod(0o600)
        conffiles.append("/etc/courtguard/enroll.toml")
    return conffiles


def _stage_unit(root: Path) -> None:
    text = (REPO / "systemd" / UNIT).read_text(encoding="utf-8")
    if VENV_EXEC not in text:
        raise BuildError(f"systemd/{UNIT} no longer names {VENV_EXEC}: update the build script")
    units = root / "lib/systemd/system"
    units.mkdir(parents=True)
    (units / UNIT).write_text(text.replace(VENV_EXEC, EXECUTABLE), encoding="utf-8")
    (units / UNIT).chmod(0o644)


def _stage_docs(root: Path, version: str) -> None:
    docs = root / "usr/share/doc" / PACKAGE
    docs.mkdir(parents=True)
    # Named by the agent's settings-error hint (agent.settings.INSTALLED_EXAMPLE).
    examples = docs / "examples"
    examples.mkdir()
    shutil.copyfile(REPO / "packaging" / "examples" / "agent.toml", examples / "agent.toml")
    (examples / "agent.toml").chmod(0o644)
    (docs / "README").write_text(
        f"courtguard agent {version}: see docs/packaging.md in the courtguard sources.\n"
        f"The agent and its own Python runtime live in {INSTALL_DIR}.\n",
        encoding="utf-8",
    )


def _control(root: Path, version: str, arch: str) -> str:
    installed_kib = sum(
        (p.lstat().st_size + 1023) // 1024 for p in root.rglob("*") if p.is_file()
    )
    glibc = _glibc_needed(root / INSTALL_DIR.lstrip("/"))
    return (
        f"Package: {PACKAGE}\n"
        f"Version: {version}\n"
        f"Architecture: {arch}\n"
        "Maintainer: courtguard <courtguard@localhost>\n"
        f"Installed-Size: {installed_kib}\n"
        f"Depends: libc6 (>= {glibc})\n"
        # libpcap compiles a capture's peer filter (scapy loads it at run time, so the
        # frozen build cannot carry it); the package name changed with Debian's 64-bit time_t.
        "Recommends: nftables, iproute2, libpcap0.8 | libpcap0.8t64\n"
        "Section: admin\n"
        "Priority: optional\n"
        "Description: courtguard workstation agent (违规外联 / 外包账号 / 裁判文书)\n"
        " Compliance daemon for court workstations reporting to a courtguard collector.\n"
        " Carries its own Python runtime and libraries: no system Python, no network\n"
        " at install.\n"
    )


def _glibc_needed(tree: Path) -> str:
    """The newest GLIBC_x.y symbol version any bundled ELF file asks for."""
    newest = (2, 17)
    pattern = re.compile(rb"GLIBC_([0-9]+)\.([0-9]+)(?:\.[0-9]+)?\x00")
    for path in tree.rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        with path.open("rb") as stream:
            if stream.read(4) != b"\x7fELF":
                continue
            data = stream.read()
        for major, minor in pattern.findall(data):
            newest = max(newest, (int(major), int(minor)))
    return f"{newest[0]}.{newest[1]}"


# -- command line ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="build-deb.sh", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", help="package version (default: pyproject.toml's)")
    parser.add_argument("--out", type=Path, default=REPO / "build" / "deb",
                        help="where the .deb goes (default: build/deb)")
    parser.add_argument("--build-dir", type=Path, default=REPO / "build" / "agent-onefolder",
                        help="where the one-folder build is made and kept between runs")
    parser.add_argument("--reuse-build", type=Path, metavar="DIR",
                        help="pack this existing one-folder tree (DIR/courtguard-agent) as is")
    parser.add_argument("--preseed", type=Path, metavar="FILE",
                        help="ship FILE as /etc/courtguard/enroll.toml (mode 0600)")
    parser.add_argument("--compress", choices=("xz", "gzip", "none"), default="xz")
    parser.add_argument("--print-tree", action="store_true",
                        help="build (or reuse) the one-folder tree, print its path, do not pack")
    args = parser.parse_args(argv)
    version = args.version or project_version()
    try:
        if not VERSION_PATTERN.match(version):
            raise BuildError(
                f"version {version!r} is not of the form 1.2.3 or 1.2.3+local: Debian and the "
                "agent's own version check must order releases the same way"
            )
        if args.preseed is not None and not args.preseed.is_file():
            raise BuildError(f"--preseed {args.preseed}: no such file")
        if args.reuse_build is not None:
            tree = args.reuse_build.resolve()
            if (tree / PACKAGE).is_dir():  # the --build-dir itself was given
                tree = tree / PACKAGE
        else:
            tree = freeze(args.build_dir.resolve())
        if args.print_tree:
            print(tree)
            return 0
        deb = pack(tree, version, args.out.resolve(), args.preseed, args.compress)
    except BuildError as exc:
        print(f"build-deb: {exc}", file=sys.stderr)
        return 2
    log(f"built {deb} ({deb.stat().st_size} bytes)")
    print(deb)
    return 0


if __name__ == "__main__":
    sys.exit(main())
