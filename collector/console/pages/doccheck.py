"""文书检查: a clerk uploads judgments, sees every finding in place, marks findings not
applicable, downloads the corrected copy; the security team reviews the decisions.

Files are checked in the collector's document workers (``collector.doccheck.work``)
under their memory and CPU limits, never in the server process. A check's
outcome stays in memory (``collector.doccheck.results``) for the page to come
back to; the store keeps only the history row (hash, pseudonymised name,
verdict, counts) and the decisions, each audited.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import PurePosixPath
from typing import Any, Final
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.responses import RedirectResponse, Response

from agent.detectors.documents.checker.extract import SUPPORTED_SUFFIXES
from agent.events import utcnow
from collector.api.bounds import check_text
from collector.api.context import context
from collector.console.auth import ALL_ROLES, DOCUMENT_CHECK
from collector.console.page import SECURITY_HEADERS, Page, open_page, render
from collector.doccheck import work
from collector.doccheck.results import ResultCache
from collector.errors import ApiError
from collector.store import doccheck as store

router = APIRouter()

#: At most this many files in one upload.
MAX_FILES: Final = 20
#: The page's own suffixes: the checker's less the legacy Word formats it converts slowly.
PAGE_SUFFIXES: Final = (".docx", ".pdf", ".ofd", ".txt", ".doc", ".wps")
PROFILES: Final = ("spc-2024", "spc-2016")
MULTIPART_SLACK: Final = 1024 * 1024
TOO_LARGE: Final = "The upload is too large: at most {size} in all; check fewer files at a time."
WRONG_TYPE: Final = "Only .docx, .pdf, .ofd and .txt files (and .doc, .wps) can be checked."


def upload_limit(request: Request) -> int:
    """Largest upload (all files together) the page takes: the check endpoint's limit."""
    return int(context(request).settings.max_document_bytes)


def body_limit(max_document_bytes: int) -> int:
    """The body limit the middleware puts on the upload route: past the page's own limit,
    so the page itself can answer an oversize upload with its message, unread."""
    return 2 * max_document_bytes + MULTIPART_SLACK


def results(request: Request) -> ResultCache:
    cache = getattr(request.app.state, "doccheck_results", None)
    if cache is None:
        cache = request.app.state.doccheck_results = ResultCache()
    return cache


def _size_words(size: int) -> str:
    return f"{size / 1024 / 1024:.0f} MB" if size >= 1024 * 1024 else f"{size // 1024} KB"


@router.get("/console/doccheck")
async def doccheck_page(request: Request) -> Response:
    page = await open_page(request, DOCUMENT_CHECK)
    checker = request.app.state.document_checker
    if not checker.started:
        # Start the workers while the clerk picks files, so the first check answers at once.
        request.app.state.doccheck_warming = asyncio.create_task(checker.warm())
    return await _form(page, request)


async def _form(page: Page, request: Request, code: int = 200,
                error: str | None = None) -> Response:
    rows = await run_in_threadpool(store.history, page.db, page.who.name, 50)
    limit = upload_limit(request)
    return render(page, request, "doccheck.html", code, history=rows, error=error,
                  suffixes=PAGE_SUFFIXES, profiles=PROFILES,
                  max_bytes=limit, max_words=_size_words(limit), max_files=MAX_FILES,
                  reviewer=page.who.role in ALL_ROLES, verdict_words=work.VERDICT_WORDS)


@router.post("/console/doccheck")
async def doccheck_upload(request: Request) -> Response:
    page = await open_page(request, DOCUMENT_CHECK)
    limit = upload_limit(request)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + MULTIPART_SLACK:
        # Not read: the middleware closes the connection after this answer.
        return await _form(page, request, 413,
                           error=page.t(TOO_LARGE).format(size=_size_words(limit)))
    try:
        form = await request.form(max_files=MAX_FILES, max_fields=10)
    except (HTTPException, MultiPartException):
        return await _form(page, request, 400, error=page.t(
            "The upload could not be read; at most {n} files at a time.").format(n=MAX_FILES))
    token = form.get("csrf")
    if page.who.session is None or not page.who.session.csrf_ok(
            token if isinstance(token, str) else None):
        raise ApiError(403, "csrf_failed", "the form is stale or did not come from the console")
    profile_value = form.get("profile")
    profile = profile_value if isinstance(profile_value, str) and profile_value in PROFILES \
        else None
    uploads = [f for f in form.getlist("files") if isinstance(f, UploadFile) and f.filename]
    if not uploads:
        return await _form(page, request, 422, error=page.t("Choose at least one file."))
    tokens: list[str] = []
    total = 0
    for upload in uploads:
        name = PurePosixPath((upload.filename or "").replace("\\", "/")).name[:200]
        try:
            check_text(name)
        except ValueError:
            name = "document" + PurePosixPath(name.replace("\x00", "")).suffix
        data = await upload.read(limit + 1)
        await upload.close()
        total += len(data)
        refusal = None
        if total > limit:
            refusal = page.t(TOO_LARGE).format(size=_size_words(limit))
        elif not data:
            refusal = page.t("The file is empty.")
        elif PurePosixPath(name).suffix.lower() not in SUPPORTED_SUFFIXES:
            refusal = page.t(WRONG_TYPE)
        if refusal is not None:  # shown with the others; nothing stored
            outcome = _unreadable(b"", "", name, refusal)
            tokens.append(results(request).put(page.who.name, b"", outcome, profile))
            if total > limit:
                break
            continue
        tokens.append(await _check_one(page, request, data, name, profile))
    query = urlencode([("t", t) for t in tokens])
    return RedirectResponse(f"/console/doccheck/result?{query}", 303, headers=SECURITY_HEADERS)


async def _check_one(page: Page, request: Request, data: bytes, name: str,
                     profile: str | None) -> str:
    started = time.perf_counter()
    checker = request.app.state.document_checker
    policy = await run_in_threadpool(checker.policy)
    digest = hashlib.sha256(data).hexdigest()
    excluded = await run_in_threadpool(store.excluded_keys, page.db, digest)
    outcome = await checker.run(work.check_task, data, name, policy, profile, excluded)
    if isinstance(outcome, str):  # the worker died on it or ran out of time
        outcome = _unreadable(data, digest, name, outcome)
    elapsed = (time.perf_counter() - started) * 1000
    await run_in_threadpool(store.record_check, page.db, page.actor, work.history_row(outcome),
                            elapsed, utcnow())
    return results(request).put(page.who.name, data if outcome["error"] is None else b"",
                                outcome, profile)


def _unreadable(data: bytes, digest: str, name: str, error: str) -> dict[str, Any]:
    suffix = PurePosixPath(name).suffix
    return {"name": name, "sha256": digest, "size": len(data), "suffix": suffix,
            "error": error, "safe_name": f"（文件名未审查）{suffix}", "verdict": None,
            "counts": {}, "applied_counts": {}, "findings": [], "groups": [], "parts": [],
            "corrected": None, "corrected_name": None, "corrected_text": None,
            "excluded_count": 0, "unlisted": 0, "why": [error]}


@router.get("/console/doccheck/result")
async def doccheck_result(request: Request) -> Response:
    page = await open_page(request, DOCUMENT_CHECK)
    cache = results(request)
    documents, expired = [], 0
    for token in request.query_params.getlist("t")[:MAX_FILES]:
        kept = cache.get(token, page.who.name)
        if kept is None:
            expired += 1
            continue
        decisions = await run_in_threadpool(store.current, page.db, kept.outcome["sha256"]) \
            if kept.outcome["sha256"] else {}
        documents.append({"token": token, **kept.outcome, "decisions": decisions})
    return render(page, request, "doccheck_result.html", documents=documents, expired=expired,
                  back=request.url.query, verdict_words=work.VERDICT_WORDS)


@router.post("/console/doccheck/decide")
async def doccheck_decide(request: Request) -> Response:
    page = await open_page(request, DOCUMENT_CHECK)
    form = await request.form(max_files=0, max_fields=1000)
    token_field = form.get("csrf")
    if page.who.session is None or not page.who.session.csrf_ok(
            token_field if isinstance(token_field, str) else None):
        raise ApiError(403, "csrf_failed", "the form is stale or did not come from the console")
    token = str(form.get("token") or "")
    back = str(form.get("back") or "")
    decision = str(form.get("decision") or "")
    reason = str(form.get("reason") or "")
    keys = {str(k) for k in form.getlist("key")}
    kept = results(request).get(token, page.who.name)
    if kept is None:
        return render(page, request, "error.html", 410, message=page.t(
            "This check result is no longer kept (one hour); upload the file again."))
    chosen = [f for f in kept.outcome["findings"] if f["key"] in keys]
    if not chosen:
        return render(page, request, "error.html", 422, message=page.t(
            "Choose the findings the decision is about."))
    if "\x00" in reason:
        return render(page, request, "error.html", 422, message=page.t(
            "The reason holds a character that cannot be stored."))
    try:
        await run_in_threadpool(store.decide, page.db, page.actor, kept.outcome["sha256"],
                                chosen, decision, reason, utcnow())
    except store.DecisionError as exc:
        return render(page, request, "error.html", 422, message=str(exc))
    checker = request.app.state.document_checker
    policy = await run_in_threadpool(checker.policy)
    excluded = await run_in_threadpool(store.excluded_keys, page.db, kept.outcome["sha256"])
    outcome = await checker.run(work.check_task, kept.data, kept.outcome["name"], policy,
                                kept.profile, excluded)
    if isinstance(outcome, dict):
        results(request).replace(token, outcome)
    target = f"/console/doccheck/result?{back}" if back.startswith("t=") \
        else f"/console/doccheck/result?{urlencode({'t': token})}"
    return RedirectResponse(f"{target}#doc-{token}", 303, headers=SECURITY_HEADERS)


@router.get("/console/doccheck/download/{token}")
async def doccheck_download(request: Request, token: str) -> Response:
    page = await open_page(request, DOCUMENT_CHECK)
    kept = results(request).get(token, page.who.name)
    if kept is None or not kept.outcome.get("corrected"):
        return render(page, request, "error.html", 404, message=page.t(
            "This check result is no longer kept (one hour); upload the file again."))
    outcome = kept.outcome
    name, body = outcome["corrected_name"], outcome["corrected"]
    kind = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    if request.query_params.get("as") == "txt" and outcome.get("corrected_text") is not None:
        name = str(PurePosixPath(name).with_suffix(".txt"))
        body, kind = outcome["corrected_text"].encode("utf-8"), "text/plain; charset=utf-8"
    elif name.endswith(".txt"):
        kind = "text/plain"
    disposition = f"attachment; filename=\"corrected{PurePosixPath(name).suffix}\"; " \
                  f"filename*=UTF-8''{quote(name)}"
    return Response(body, media_type=kind,
                    headers={**SECURITY_HEADERS, "Content-Disposition": disposition})


@router.get("/console/docdecisions")
async def decisions_page(request: Request) -> Response:
    page = await open_page(request, ALL_ROLES)
    before = request.query_params.get("before", "")
    before_id = int(before) if before.isdigit() and len(before) < 19 else None
    clerk = request.query_params.get("clerk", "")[:100] or None
    rows = await run_in_threadpool(store.list_decisions, page.db, 100, before_id, clerk)
    more = None
    if len(rows) == 100:
        more = "/console/docdecisions?" + urlencode(
            {"before": rows[-1]["id"], **({"clerk": clerk} if clerk else {})})
    return render(page, request, "doccheck_decisions.html", decisions=rows, clerk=clerk or "",
                  more=more)
