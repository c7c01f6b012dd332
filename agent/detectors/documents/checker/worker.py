"""Scan files in worker processes under memory and CPU limits, so no file can stop the caller.

``scan_file`` is what a worker runs for one file: hash, extract, scan, and a
JSON-ready report (the shape ``scan --json`` prints and the collector's
``/api/v1/documents/check`` returns). ``ScanPool`` runs it over many files on
all cores; a worker killed by its limits (a decompression bomb that slipped
past the counted reads, a parser stuck in a loop) breaks the pool, and the
files it had in flight are retried one by one in fresh pools so only the
culprit is reported as an error.

The limits are POSIX rlimits; on Windows (no ``resource``) workers run
without them and a stuck file is ended by the caller's timeout. Every finding
in a report carries where it is: ``line`` and ``column`` (1-based, in
characters, within its part) and, for .docx, ``paragraph`` (the n-th ``<w:p>``
of its part); ``with_text`` adds ``original`` (the text as it stands, for a
person at the command line only: never in JSON, events or logs) and
``replacement``.
"""

from __future__ import annotations

import bisect
import hashlib
import os
import sys
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Final

from agent.detectors.documents.checker.context import Part
from agent.detectors.documents.checker.extract import (
    DEFAULT_LIMITS,
    Extracted,
    ExtractionError,
    Limits,
    extract_bytes,
)
from agent.detectors.documents.checker.scanner import DocFinding, ScanResult, scan_parts
from agent.detectors.documents.policy import DocumentsPolicy

#: Address space a worker may use; extraction of a 200-page document needs far less.
WORKER_MEMORY_BYTES: Final = 1536 * 1024 * 1024
#: CPU seconds one file may take in a worker.
WORKER_CPU_SECONDS: Final = 60

_policy: DocumentsPolicy | None = None
_profile: str | None = None
_limits: Limits = DEFAULT_LIMITS
_cpu_seconds: int = WORKER_CPU_SECONDS
_with_text: bool = False


def _init_worker(
    policy: dict[str, Any] | DocumentsPolicy,
    profile: str | None,
    limits: Limits,
    memory_bytes: int,
    cpu_seconds: int = WORKER_CPU_SECONDS,
    with_text: bool = False,
) -> None:
    global _policy, _profile, _limits, _cpu_seconds, _with_text
    _cpu_seconds, _with_text = cpu_seconds, with_text
    # Generic pydantic models do not pickle: a spawned worker gets the policy's JSON form,
    # a forked one the parent's object as it is.
    if not isinstance(policy, DocumentsPolicy):
        policy = DocumentsPolicy.model_validate(policy)
    _policy, _profile, _limits = policy, profile, limits
    _init_limits(memory_bytes)


def _cpu_budget(seconds: int) -> None:
    """Let this file use ``seconds`` of CPU beyond what the worker has used so far."""
    try:
        import resource
    except ImportError:  # Windows: no rlimits
        return
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = int(usage.ru_utime + usage.ru_stime) + 1
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = used + seconds
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def report(
    path: str,
    digest: str | None,
    size: int,
    result: ScanResult | None,
    error: str | None,
    extracted: Extracted | None = None,
    with_text: bool = False,
) -> dict[str, Any]:
    """The JSON-ready report; ``extracted`` (what ``result`` was scanned from) adds positions."""
    findings: list[dict[str, Any]] = []
    if result is not None:
        parts = {p.name: p for p in extracted.parts} if extracted else {}
        paragraphs = extracted.paragraphs if extracted else {}
        for finding in result.findings:
            entry = finding.as_json()
            part = parts.get(finding.part)
            if part is not None:
                entry.update(position(part, paragraphs.get(part.name), finding.start))
                if with_text:
                    entry.update(original_text(part, finding))
            findings.append(entry)
    return {
        "path": path,
        "sha256": digest,
        "size": size,
        "verdict": result.verdict if result else None,
        "profile": result.profile if result else None,
        "findings": findings,
        "error": error,
    }


def position(part: Part, paragraph_starts: list[int] | None, offset: int) -> dict[str, Any]:
    """1-based line and column (characters) of ``offset`` in ``part``, and paragraph for .docx."""
    line_start = part.text.rfind("\n", 0, offset) + 1
    return {
        "line": part.text.count("\n", 0, offset) + 1,
        "column": offset - line_start + 1,
        "paragraph": bisect.bisect_right(paragraph_starts, offset) if paragraph_starts else None,
    }


def original_text(part: Part, finding: DocFinding) -> dict[str, Any]:
    """What a person searches the document for, and what the fix would write instead."""
    return {
        "original": part.text[finding.start : finding.end],
        "replacement": finding.replacement,
    }


def scan_data(
    data: bytes,
    name: str,
    policy: DocumentsPolicy,
    profile: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
    path: str | None = None,
    with_text: bool = False,
) -> dict[str, Any]:
    """Extract and scan one file's bytes; an unreadable file is a report with ``error``."""
    digest = hashlib.sha256(data).hexdigest()
    try:
        extracted = extract_bytes(data, name, limits)
    except ExtractionError as exc:
        return report(path or name, digest, len(data), None, str(exc))
    except MemoryError:
        return report(path or name, digest, len(data), None, "审查时内存超出上限，疑似恶意文件")
    except RecursionError:
        return report(path or name, digest, len(data), None, "文件结构嵌套过深，疑似恶意文件")
    result = scan_parts(extracted.parts, policy, profile)
    return report(path or name, digest, len(data), result, None, extracted, with_text)


def scan_file(path: str) -> dict[str, Any]:
    """Worker entry point: one file, under the worker's limits."""
    if _policy is None:
        raise RuntimeError("worker not initialised")
    _cpu_budget(_cpu_seconds)
    file = Path(path)
    try:
        size = file.stat().st_size
        if size > _limits.max_file_bytes:
            return report(
                path,
                None,
                size,
                None,
                f"文件过大（{size} 字节，上限 {_limits.max_file_bytes} 字节），未审查",
            )
        data = file.read_bytes()
    except OSError as exc:
        return report(path, None, 0, None, f"无法读取文件：{exc.strerror}")
    return scan_data(data, file.name, _policy, _profile, _limits, path, _with_text)


def fork_is_safe() -> bool:
    """Whether workers may be forked: POSIX, and no other thread whose locks a fork would copy.

    A forked worker starts with the caller's modules already imported, so a
    one-file scan does not pay the start-up twice (spawn imports everything again).
    """
    import multiprocessing
    import threading

    return "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1


class ScanPool:
    """Files in, one report per file out (in completion order), on ``workers`` processes.

    ``fork``: start workers by forking this process (only where ``fork_is_safe``);
    otherwise they are spawned and import the checker afresh.
    """

    def __init__(
        self,
        policy: DocumentsPolicy,
        profile: str | None = None,
        workers: int | None = None,
        limits: Limits = DEFAULT_LIMITS,
        memory_bytes: int = WORKER_MEMORY_BYTES,
        cpu_seconds: int = WORKER_CPU_SECONDS,
        *,
        fork: bool = False,
        with_text: bool = False,
    ) -> None:
        self.fork = fork and fork_is_safe()
        shipped: dict[str, Any] | DocumentsPolicy = (
            policy if self.fork else policy.model_dump(mode="json")
        )
        self.initargs = (shipped, profile, limits, memory_bytes, cpu_seconds, with_text)
        self.workers = max(1, workers or os.cpu_count() or 1)

    def _pool(self, workers: int) -> ProcessPoolExecutor:
        import multiprocessing

        return ProcessPoolExecutor(
            max_workers=workers,
            # Either way a worker's parent is this process: die with us, see bytes_pool.
            mp_context=multiprocessing.get_context("fork" if self.fork else "spawn"),
            initializer=_init_worker,
            initargs=self.initargs,
        )

    def scan(self, paths: Iterable[str]) -> Iterator[dict[str, Any]]:
        pending = list(paths)
        suspects: list[str] = []
        with self._pool(min(self.workers, max(1, len(pending)))) as pool:
            futures: dict[Future[dict[str, Any]], str] = {
                pool.submit(scan_file, p): p for p in pending
            }
            from concurrent.futures import as_completed

            for future in as_completed(futures):
                try:
                    yield future.result()
                except BrokenProcessPool:
                    suspects.append(futures[future])
        for path in suspects:
            yield self._alone(path)

    def _alone(self, path: str) -> dict[str, Any]:
        with self._pool(1) as pool:
            try:
                return pool.submit(scan_file, path).result()
            except BrokenProcessPool:
                return report(
                    path,
                    None,
                    0,
                    None,
                    "审查进程因超出内存或时间上限而终止，疑似恶意或异常文件，未审查",
                )


def die_with_parent() -> None:
    """Linux: the kernel kills this worker when the process that started it dies."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before prctl: do not linger
        os._exit(1)


def _init_limits(memory_bytes: int) -> None:
    die_with_parent()
    try:
        import resource
    except ImportError:  # Windows: no rlimits
        return
    if memory_bytes:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = memory_bytes if hard == resource.RLIM_INFINITY else min(memory_bytes, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def scan_bytes_task(
    data: bytes, name: str, policy: dict[str, Any], profile: str | None
) -> dict[str, Any]:
    """Worker entry point for callers holding bytes (the collector's check endpoint)."""
    _cpu_budget(WORKER_CPU_SECONDS)
    return scan_data(data, name, DocumentsPolicy.model_validate(policy), profile)


def bytes_pool(workers: int, memory_bytes: int = WORKER_MEMORY_BYTES) -> ProcessPoolExecutor:
    import multiprocessing

    # spawn, not forkserver: the worker's parent is the server itself, so a server killed
    # without a clean shutdown takes its workers with it (PR_SET_PDEATHSIG).
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_limits,
        initargs=(memory_bytes,),
    )
