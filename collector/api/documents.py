"""``POST /api/v1/documents/check``: a publishing system asks whether a judgment may go online.

The body is the file itself (any Content-Type; gzip Content-Encoding allowed),
``?name=`` gives its file name (the extension picks the format and the name is
checked too) and ``?profile=`` overrides the policy's profile. The answer is
the JSON ``courtguard-agent scan --json`` prints for one document; a file that
cannot be checked answers 200 with ``verdict: null`` and ``error`` set, so a
caller gates on ``verdict == "publishable"``. Files are parsed in worker
processes under memory and CPU limits, never in the server process.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from agent.detectors.documents.policy import DocumentsPolicy
from agent.errors import PolicyError
from collector.api.auth import require_one_of
from collector.api.body import decode, read_limited
from collector.api.context import context
from collector.api.responses import json_response
from collector.errors import ApiError
from collector.store.apikeys import ApiKeyInfo

#: Who may call the check: administrators and publishing systems, clerks (书记员), reviewers.
CHECK_ROLES = ("admin", "reviewer", "clerk")


async def require_document_checker(request: Request) -> ApiKeyInfo:
    return await require_one_of(request, CHECK_ROLES)


router = APIRouter(dependencies=[Depends(require_document_checker)])

#: Wall-clock bound on one check; the worker's own CPU limit ends a runaway parse.
CHECK_TIMEOUT_S = 180.0


class DocumentChecker:
    """The worker pool and the documents policy, reloaded when its file changes."""

    def __init__(self, policy_dir: Path | None, workers: int) -> None:
        self.policy_dir = policy_dir
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._policy: dict[str, Any] | None = None
        self._policy_stamp: tuple[int, int] | None = None

    def policy(self) -> dict[str, Any]:
        from agent.policy.loader import parse_document

        path = (self.policy_dir or Path("/nonexistent")) / "documents.yaml"
        try:
            stat = path.stat()
        except OSError:
            raise ApiError(
                503, "no_documents_policy", f"the collector has no documents policy ({path})"
            ) from None
        stamp = (stat.st_mtime_ns, stat.st_size)
        if self._policy is None or stamp != self._policy_stamp:
            try:
                document = parse_document(path, path.read_bytes())
            except PolicyError as exc:
                raise ApiError(503, "bad_documents_policy", str(exc)) from None
            if not isinstance(document, DocumentsPolicy):
                raise ApiError(503, "bad_documents_policy", f"{path} is not a documents policy")
            self._policy = document.model_dump(mode="json")
            self._policy_stamp = stamp
        return self._policy

    def pool(self) -> ProcessPoolExecutor:
        from agent.detectors.documents.checker.worker import bytes_pool

        if self._pool is None:
            self._pool = bytes_pool(self.workers)
        return self._pool

    async def check(self, data: bytes, name: str, profile: str | None) -> dict[str, Any]:
        from agent.detectors.documents.checker.worker import report, scan_bytes_task

        policy = await run_in_threadpool(self.policy)
        outcome = await self.run(scan_bytes_task, data, name, policy, profile)
        if isinstance(outcome, str):
            import hashlib

            return report(name, hashlib.sha256(data).hexdigest(), len(data), None, outcome)
        return outcome

    async def run(self, task: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any] | str:
        """``task(*args)`` in a worker; a Chinese message instead when the worker died or
        ran out of time (the pool is then replaced)."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self.pool(), task, *args)
        try:
            return await asyncio.wait_for(future, CHECK_TIMEOUT_S)
        except BrokenProcessPool:
            self.close()
            return "审查进程因超出内存或时间上限而终止，疑似恶意或异常文件，未审查"
        except TimeoutError:
            self.close()
            return f"审查超时（{CHECK_TIMEOUT_S:.0f} 秒），未审查"

    @property
    def started(self) -> bool:
        return self._pool is not None

    async def warm(self) -> None:
        """Start the workers now, so the first check does not wait for them to start."""
        loop = asyncio.get_running_loop()
        pool = self.pool()
        started = [loop.run_in_executor(pool, _warm_worker) for _ in range(self.workers)]
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*started), 60)

    def close(self, wait: bool = False) -> None:
        """Stop the workers: at shutdown wait for them; after a failure do not block on one."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            if not wait:
                for process in list(getattr(pool, "_processes", {}).values()):
                    process.kill()  # a worker stuck in a hostile file would never return
            pool.shutdown(wait=wait, cancel_futures=True)


def _warm_worker() -> dict[str, Any]:
    """Imports what a check needs, in the worker."""
    import collector.doccheck.work  # noqa: F401 (imported for its cost, paid before a check)

    return {}


@router.post("/api/v1/documents/check")
async def check_document(
    request: Request,
    name: Annotated[str, Query(min_length=1, max_length=255)],
    profile: Literal["spc-2016", "spc-2024"] | None = None,
) -> Response:
    """Scan one document; answer with its verdict and findings (masked excerpts only)."""
    settings = context(request).settings
    base = PurePosixPath(name.replace("\\", "/")).name
    if not base:
        raise ApiError(422, "invalid_request", "name: give the document's file name")
    raw = await read_limited(request, settings.max_document_bytes)
    data = decode(raw, request.headers.get("content-encoding"), settings.max_document_bytes)
    if not data:
        raise ApiError(422, "invalid_request", "the body is empty; send the document's bytes")
    checker: DocumentChecker = request.app.state.document_checker
    return json_response(await checker.check(data, base, profile))


#: The security team's JSON view of clerks' decisions (the 书记员处理记录 page's twin).
review_router = APIRouter()


@review_router.get("/api/v1/documents/decisions")
async def list_decisions(
    request: Request,
    clerk: Annotated[str | None, Query(max_length=100)] = None,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """Clerks' decisions on findings, newest first: ``{decisions, next_before}``."""
    from collector.console.auth import ALL_ROLES, require
    from collector.store import doccheck

    await require(request, ALL_ROLES)
    rows = await run_in_threadpool(doccheck.list_decisions, context(request).db, limit, before,
                                   clerk or None)
    decisions = [{**row, "decided_at": row["decided_at"].isoformat()} for row in rows]
    return json_response({"decisions": decisions,
                          "next_before": rows[-1]["id"] if len(rows) == limit else None})
