"""A minimal Debian root without Python, made once, and throwaway copies of it to install into.

1. ``cached_minbase`` runs ``debootstrap --variant=minbase`` once per cache
   (``COURTGUARD_TEST_CACHE``) under a lock, so two test workers never build it
   twice nor into the same directory; ``start_minbase_in_background`` starts that
   while the agent's frozen build runs, since the two take minutes each and share
   nothing.
2. ``Chroot`` gives a test its own writable view of that root: an overlay mount
   whose writes go to a layer in the test's directory (no copy of the root), or,
   where the kernel refuses the overlay, a ``cp -a`` copy. Either way the cached
   root is never written, and /proc, /sys and /dev are bound in.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

CACHE = Path(os.environ.get("COURTGUARD_TEST_CACHE", "/var/cache/courtguard-test"))
MIRROR = os.environ.get("COURTGUARD_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
SUITE = "bookworm"


class MinbaseUnavailable(Exception):
    """debootstrap failed (no mirror, no network); the message has its output's tail."""


@contextlib.contextmanager
def cache_lock(name: str) -> Iterator[None]:
    """Hold ``CACHE/name.lock``: one builder at a time across workers and threads."""
    path = CACHE / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def cached_minbase() -> Path:
    """The debootstrapped minimal root, made now or found in the cache."""
    done_root = CACHE / "debootstrap" / f"{SUITE}-minbase"
    with cache_lock(f"debootstrap-{SUITE}"):
        if (done_root / "etc" / "debian_version").is_file():
            return done_root
        partial = done_root.with_name(done_root.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.parent.mkdir(parents=True, exist_ok=True)
        made = subprocess.run(
            ["debootstrap", "--variant=minbase", SUITE, str(partial), MIRROR],
            capture_output=True, text=True, timeout=1800, check=False,
        )
        if made.returncode != 0:
            shutil.rmtree(partial, ignore_errors=True)
            output = (made.stdout + made.stderr).splitlines()[-5:]
            raise MinbaseUnavailable(f"debootstrap from {MIRROR} failed: " + "\n".join(output))
        partial.rename(done_root)
        return done_root


_background: list[threading.Thread] = []


def start_minbase_in_background() -> None:
    """Start ``cached_minbase`` in a thread of this process, once; its caller goes on.

    Whoever needs the root calls ``cached_minbase`` again: it waits on the lock
    for this build and finds its result, or, if this build failed, tries again
    and reports why.
    """
    if _background or os.geteuid() != 0 or shutil.which("debootstrap") is None:
        return

    def build() -> None:
        with contextlib.suppress(Exception):
            cached_minbase()

    thread = threading.Thread(target=build, name="debootstrap", daemon=True)
    _background.append(thread)
    thread.start()


def chroot_env() -> dict[str, str]:
    return {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8", "HOME": "/root", "DEBIAN_FRONTEND": "noninteractive"}


class Chroot:
    """A writable view of the cached root with /proc, /sys and /dev bound in; undone on close."""

    def __init__(self, template: Path, target: Path) -> None:
        self.root = target
        self.layer = target.with_name(f"{target.name}.layer")
        self.mounts: list[Path] = []
        target.mkdir(parents=True)
        try:
            if _mount_overlay(template, target, self.layer):
                self.mounts.append(target)
            else:
                subprocess.run(["cp", "-a", f"{template}/.", str(target)], check=True,
                               timeout=600)
            for name, kind in (("proc", ["-t", "proc", "proc"]), ("sys", ["--rbind", "/sys"]),
                               ("dev", ["--rbind", "/dev"])):
                point = target / name
                self.mounts.append(point)
                subprocess.run(["mount", *kind, str(point)], check=True, timeout=60)
                if kind[0] == "--rbind":
                    subprocess.run(["mount", "--make-rslave", str(point)], check=True,
                                   timeout=60)
        except BaseException:
            self.close()
            raise

    def run(self, *argv: str, check: bool = True, env: dict[str, str] | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["chroot", str(self.root), *argv], capture_output=True, text=True,
            timeout=timeout, check=False, env=env or chroot_env(),
        )
        if check:
            assert done.returncode == 0, f"{argv}: {done.returncode}\n{done.stdout}{done.stderr}"
        return done

    def close(self) -> None:
        for point in reversed(self.mounts):
            subprocess.run(["umount", "-R", "-l", str(point)], check=False, timeout=60)
        # Only a root nothing is mounted on any more is deleted: never through a bind into
        # the host's /dev, never through the overlay into what it shows.
        if not any(_is_mount(p) for p in self.mounts):
            shutil.rmtree(self.root, ignore_errors=True)
            shutil.rmtree(self.layer, ignore_errors=True)


def _mount_overlay(lower: Path, merged: Path, layer: Path) -> bool:
    """Mount ``lower`` read-only under ``merged`` with writes going to ``layer``; False if refused.

    The kernel refuses when overlayfs is missing or ``layer`` is itself on an
    overlay (a container's /tmp): the copy is slower and shows the same files.
    """
    upper, work = layer / "upper", layer / "work"
    upper.mkdir(parents=True)
    work.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o",
         f"lowerdir={lower},upperdir={upper},workdir={work}", str(merged)],
        capture_output=True, text=True, check=False, timeout=60,
    )
    if mounted.returncode == 0:
        return True
    print(f"overlay mount refused, copying {lower} instead: {mounted.stderr.strip()}",
          file=sys.stderr)
    shutil.rmtree(layer, ignore_errors=True)
    return False


def _is_mount(path: Path) -> bool:
    return subprocess.run(["mountpoint", "-q", str(path)], check=False).returncode == 0
