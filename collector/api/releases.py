"""Agent releases over HTTP: agents ask for their target and download it; admins see rollouts.

``GET /api/v1/release?arch=A`` (agent): the target of the agent's group for
architecture ``A`` as JSON (version, sha256, size, target group, row id), or
404 ``no_release``. Unsigned routing facts: the agent uses them only to skip
a download it would refuse anyway.

``GET /api/v1/release/package?arch=A`` (agent): the same target's exact
package bytes, with the signature over them in ``X-Courtguard-Signature``
(algorithm in ``X-Courtguard-Signature-Algorithm``) and the group it targets
in ``X-Courtguard-Release-Group`` (``*`` for all). A package whose stored bytes
no longer verify is never served (503 ``release_untrusted``). Serving it
records the agent as ``downloaded``.

With ``&version=V`` the package of the newest release of version ``V`` (the
running agent's, as it reports it) instead, targeted or not: the package the
agent keeps to go back to, before it upgrades.

``POST /api/v1/release/report`` (agent): ``{"version", "state", "reason_code",
"reason"}`` with state ``installed``, ``failed`` or ``refused``.

``GET /api/v1/releases`` (admin): ``release status`` as JSON.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from agent.events import utcnow
from collector.api.auth import require_admin, require_agent
from collector.api.context import context
from collector.api.responses import json_response
from collector.errors import ApiError, CollectorError
from collector.policy.signing import signature_algorithm, verifying_public_key
from collector.releases import store
from collector.releases.status import release_status

agent_router = APIRouter()
admin_router = APIRouter(dependencies=[Depends(require_admin)])

_ARCH: Final = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
#: Verified packages kept in memory (tens of MB each): the versions of one rollout.
MAX_CACHED_PACKAGES: Final = 4
#: A report is a version, a state and a short reason.
MAX_REPORT_BYTES: Final = 4096


class UpgradeReport(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    version: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    state: Literal["installed", "failed", "refused"]
    architecture: Annotated[str, StringConstraints(max_length=32)] = ""
    reason_code: Annotated[str, StringConstraints(max_length=32)] | None = None
    reason: Annotated[str, StringConstraints(max_length=500)] | None = None


def _verified(request: Request) -> dict[tuple[str, str], store.Package]:
    """Packages this process read and verified, by digest and key: a rollout downloads the
    same package once per agent, so it is read and verified once, not hundreds of times.
    The bytes are immutable by digest; an edited row has another digest or fails before."""
    found: dict[tuple[str, str], store.Package] | None = getattr(
        request.app.state, "verified_releases", None)
    if found is None:
        found = request.app.state.verified_releases = {}
    return found


def _arch(value: str | None) -> str:
    if value is None or not _ARCH.match(value):
        raise ApiError(422, "invalid_request",
                       "arch must be a dpkg architecture name such as amd64 or arm64")
    return value


async def _target(request: Request, arch: str) -> tuple[Any, store.ReleaseRow]:
    ctx = context(request)
    agent = await require_agent(request, ctx.identities)

    def find() -> store.ReleaseRow | None:
        with ctx.db.read() as conn:
            return store.target_for(conn, agent.group, arch)

    row = await run_in_threadpool(find)
    if row is None:
        raise ApiError(404, "no_release",
                       f"no agent release is published for group {agent.group!r} and {arch}")
    return agent, row


async def _published(request: Request, arch: str, running: str) -> tuple[Any, store.ReleaseRow]:
    """The release an agent running ``running`` can go back to, whatever group it targeted."""
    ctx = context(request)
    agent = await require_agent(request, ctx.identities)

    def find() -> store.ReleaseRow | None:
        with ctx.db.read() as conn:
            return store.published_for(conn, arch, running)

    row = await run_in_threadpool(find)
    if row is None:
        raise ApiError(404, "no_release", f"version {running} was never published for {arch}")
    return agent, store.ReleaseRow(row.id, row.sha256, row.version, row.architecture, None,
                                   row.action, row.source_id, row.author, row.note,
                                   row.created_at)


@agent_router.get("/api/v1/release")
async def agent_release(request: Request, arch: str | None = None) -> Response:
    _, row = await _target(request, _arch(arch))
    return json_response({"id": row.id, "version": row.version,
                          "architecture": row.architecture, "group": row.target,
                          "sha256": row.sha256})


@agent_router.get("/api/v1/release/package")
async def agent_package(request: Request, arch: str | None = None,
                        version: str | None = None) -> Response:
    ctx = context(request)
    architecture = _arch(arch)
    if version is None:
        agent, row = await _target(request, architecture)
    else:
        agent, row = await _published(request, architecture, version[:64])
    # The key file made after this process started (init while serving) counts too.
    key = ctx.policy_key or await run_in_threadpool(verifying_public_key, ctx.settings.data_dir)
    if key is None:
        raise ApiError(503, "release_untrusted",
                       "the collector has no signing key to check the release with")

    cache = _verified(request)
    package = cache.get((row.sha256, key))
    if package is None:

        def load() -> store.Package:
            with ctx.db.read() as conn:
                return store.verified_package(conn, row.sha256, key)

        try:
            package = await run_in_threadpool(load)
        except CollectorError as exc:
            raise ApiError(503, "release_untrusted", str(exc)) from None
        if len(cache) >= MAX_CACHED_PACKAGES:
            cache.clear()
        cache[(row.sha256, key)] = package
    if version is None:
        await run_in_threadpool(store.record_progress, ctx.db, agent.id, row.version,
                                "downloaded", utcnow(), architecture=architecture)
    headers = {
        "Cache-Control": "no-store",
        "X-Courtguard-Signature": package.signature,
        "X-Courtguard-Signature-Algorithm": signature_algorithm(key),
        "X-Courtguard-Release-Group": row.target,
        "X-Courtguard-Release-Id": str(row.id),
        "ETag": f'"{package.sha256}"',
    }
    return Response(package.body, media_type="application/vnd.debian.binary-package",
                    headers=headers)


@agent_router.post("/api/v1/release/report")
async def agent_report(request: Request) -> Response:
    ctx = context(request)
    agent = await require_agent(request, ctx.identities)
    raw = await request.body()
    if len(raw) > MAX_REPORT_BYTES:
        raise ApiError(413, "body_too_large", f"the body is larger than {MAX_REPORT_BYTES} bytes")
    try:
        report = UpgradeReport.model_validate_json(raw)
    except ValidationError:
        raise ApiError(422, "invalid_request", "the upgrade report is invalid") from None
    await run_in_threadpool(store.record_progress, ctx.db, agent.id, report.version,
                            report.state, utcnow(), architecture=report.architecture,
                            reason_code=report.reason_code, reason=report.reason)
    return Response(status_code=204)


@admin_router.get("/api/v1/releases")
async def releases(request: Request) -> Response:
    return json_response(await run_in_threadpool(release_status, context(request).db))
