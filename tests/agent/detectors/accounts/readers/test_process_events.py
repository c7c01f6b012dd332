"""New processes through the kernel's process connector, beside the scan they replace.

Real programs, a real contractor account (useradd), the real netlink socket:
root only (skipped elsewhere, a failure on CI).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.detectors.accounts.observations import ProcessStarted
from agent.detectors.accounts.readers.host import Directory, GroupSource, ProcessSource
from agent.detectors.accounts.readers.proc_events import (
    PROC_EVENT_EXEC,
    PROC_EVENT_UID,
    ProcConnector,
    parse_event,
)
from agent.policy.loader import load_policy_dir

REPO = Path(__file__).resolve().parents[5]


def require_root() -> None:
    if os.geteuid() == 0 and shutil.which("useradd"):
        return
    reason = "the process connector and a contractor account need root (and useradd)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"must run on CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
def contractor() -> Iterator[str]:
    """A local account the shipped policy selects (its ``wb_`` pattern)."""
    require_root()
    name = f"wb_pe{uuid.uuid4().hex[:6]}"
    subprocess.run(["useradd", "-M", "-s", "/bin/sh", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], check=False)


@pytest.fixture
def tools() -> Iterator[Path]:
    """A folder every account can run programs from (pytest's tmp_path is root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="cg-proc-events-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _directory() -> Directory:
    directory = Directory()
    directory.update(load_policy_dir(REPO / "policies").section("accounts"))  # type: ignore[arg-type]  # the section is the accounts policy
    return directory


def _running(source: ProcessSource, seen: list[Any]) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=source.run, args=(seen.append, stop), daemon=True)
    thread.start()
    return stop, thread


def _wait_for(predicate: Any, what: str, within_s: float = 60) -> None:
    deadline = time.monotonic() + within_s  # a deadline for a hang, not a speed
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not seen within {within_s} s: {what}")
        time.sleep(0.05)


def test_events_see_a_forbidden_program_as_the_scan_does(contractor: str, tools: Path) -> None:
    """A contractor runs a real program under a forbidden name: the event-driven reader and
    the scan report the same process, program, account and hash."""
    directory = _directory()
    events = ProcessSource("ws", directory, poll_s=0.2, hash_max=1 << 26)
    scan = ProcessSource("ws", directory, poll_s=0.2, hash_max=1 << 26, events=False)
    assert events.mode == "events", events.fallback_reason
    assert scan.mode == "scan"
    by_events: list[ProcessStarted] = []
    by_scan: list[ProcessStarted] = []
    running = [_running(events, by_events), _running(scan, by_scan)]
    scanner = tools / "nmap"
    shutil.copy("/bin/sleep", scanner)
    scanner.chmod(0o755)
    try:
        time.sleep(0.5)  # both readers past their first scan
        program = subprocess.Popen([str(scanner), "5"], user=contractor)
        try:
            def reported(seen: list[ProcessStarted]) -> list[ProcessStarted]:
                return [o for o in seen if o.pid == program.pid]

            _wait_for(lambda: reported(by_events) and reported(by_scan), "the program, twice")
            [event], [scanned] = reported(by_events), reported(by_scan)
        finally:
            program.kill()
            program.wait()
    finally:
        for stop, _ in running:
            stop.set()
        events.stop()
        for _, thread in running:
            thread.join(60)
    assert event.account == scanned.account == contractor
    assert event.name == scanned.name == "nmap"
    assert event.exe == scanned.exe == str(scanner)
    assert event.sha256 == scanned.sha256 != ""
    # The forked child that set the uid before exec is not reported as a program of its own.
    assert all(o.name == "nmap" for o in by_events if o.account == contractor)


def test_a_uid_change_without_exec_is_reported_after_it_settles(contractor: str) -> None:
    """A process that becomes a contractor's without running a new program (a daemon
    dropping privileges) is still reported, as the scan would see it."""
    directory = _directory()
    events = ProcessSource("ws", directory, poll_s=60, hash_max=1 << 26)
    assert events.mode == "events", events.fallback_reason
    seen: list[ProcessStarted] = []
    stop, thread = _running(events, seen)
    uid = int(subprocess.run(["id", "-u", contractor], capture_output=True, text=True,
                             check=True).stdout)
    try:
        time.sleep(0.5)
        dropper = subprocess.Popen(
            [sys.executable, "-c", f"import os, time; os.setuid({uid}); time.sleep(5)"]
        )
        try:
            _wait_for(lambda: any(o.pid == dropper.pid for o in seen), "the dropped process")
        finally:
            dropper.kill()
            dropper.wait()
    finally:
        stop.set()
        events.stop()
        thread.join(60)
    [found] = [o for o in seen if o.pid == dropper.pid]
    assert found.account == contractor


def test_the_connector_is_refused_outside_the_initial_network_namespace() -> None:
    """Where the kernel will not deliver process events the reader scans, and says why."""
    require_root()
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare (util-linux)")
    program = (
        "from agent.detectors.accounts.readers.host import Directory, ProcessSource\n"
        "source = ProcessSource('ws', Directory(), poll_s=2, hash_max=0)\n"
        "print(source.mode, source.fallback_reason)\n"
    )
    done = subprocess.run(
        ["unshare", "--net", sys.executable, "-c", program],
        capture_output=True, text=True, timeout=60, check=True, cwd=REPO,
    )
    assert done.stdout.startswith("scan no process connector"), done.stdout + done.stderr
    assert "every 2 s" in done.stdout


def test_the_connector_filter_passes_only_exec_and_uid_changes() -> None:
    """The kernel-side filter: forks and exits (a shell's subshells) reach no reader; every
    datagram that arrives is an exec or a uid change."""
    import select
    import struct

    require_root()
    connector = ProcConnector()
    kinds: list[int] = []
    try:
        subprocess.run(
            ["/bin/sh", "-c", "for i in 1 2 3 4 5; do (:) ; done; /bin/true"], check=True
        )
        deadline = time.monotonic() + 60  # a deadline for a hang, not a speed
        while PROC_EVENT_EXEC not in kinds and time.monotonic() < deadline:
            if select.select([connector.sock], [], [], 1)[0]:
                data = connector.sock.recv(1 << 16)
                kinds.append(struct.unpack_from("=I", data, 36)[0])
    finally:
        connector.close()
    assert PROC_EVENT_EXEC in kinds
    assert set(kinds) <= {PROC_EVENT_EXEC, PROC_EVENT_UID}


def test_parse_event_reads_exec_and_uid_and_skips_threads() -> None:
    import struct

    def body(what: int, *data: int) -> bytes:
        payload = struct.pack("=IIQ", what, 0, 0) + struct.pack(f"={len(data)}I", *data)
        return struct.pack("=IIIIHH", 1, 1, 0, 0, len(payload), 0) + payload

    assert parse_event(body(PROC_EVENT_EXEC, 42, 42)).what == "exec"  # type: ignore[union-attr]  # an exec always parses
    uid = parse_event(body(PROC_EVENT_UID, 42, 42, 1003, 1003))
    assert uid is not None and (uid.what, uid.pid, uid.uid) == ("uid", 42, 1003)
    assert parse_event(body(PROC_EVENT_EXEC, 43, 42)) is None  # a thread, not the process
    assert parse_event(body(0x1, 42, 42, 43, 43)) is None  # a fork


def test_group_source_rereads_on_an_inotify_change_not_a_timer(tmp_path: Path) -> None:
    """With a day-long recheck, a write to the group file alone brings a new reading."""
    group_file = tmp_path / "group"
    group_file.write_text("staff:x:50:\n")
    source = GroupSource("ws", Directory(), recheck_s=86_400)
    source.GROUP_FILE = group_file  # type: ignore[misc]  # a file this test may write
    readings: list[int] = []
    original = source.poll_once

    def counted(emit: Any) -> None:
        readings.append(1)
        original(emit)

    source.poll_once = counted  # type: ignore[method-assign]  # counting the real method
    stop = threading.Event()
    thread = threading.Thread(target=source.run, args=(lambda _: None, stop), daemon=True)
    thread.start()
    try:
        _wait_for(lambda: readings and source.watched, "the first reading")
        group_file.write_text("staff:x:50:wb_x\n")
        _wait_for(lambda: len(readings) >= 2, "a reading after the write")
    finally:
        stop.set()
        source.stop()
        thread.join(60)
    assert not thread.is_alive()
