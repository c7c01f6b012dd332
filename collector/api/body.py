"""Request bodies within limits: bounded bytes on the wire, bounded bytes after gzip.

``BodyLimits`` bounds every route's body before any handler reads a byte: a
Content-Length over the route's limit is answered 413 at once, without calling
the app; a body sent without one (chunked) is counted as the handler reads it
and refused with 413 as soon as it passes. Routes not given their own limit
(``create_app`` gives ingest, document checks and a few more theirs) have
``DEFAULT_MAX_BYTES``: forms and JSON.

Nothing here buffers more than it must: the raw body is refused as soon as it
passes ``max_body_bytes`` (or at once, when Content-Length says it will), and
gzip is inflated with ``max_length`` so a bomb stops at ``max_decompressed_bytes``.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from collector.api.responses import error_response
from collector.errors import ApiError

#: Forms and JSON requests: sign-in, triage, silences, saved filters; no legitimate one is larger.
DEFAULT_MAX_BYTES = 64 * 1024


def _too_large(limit: int, what: str) -> ApiError:
    # Connection: close makes the server drop the connection instead of draining the rest.
    return ApiError(
        413, "body_too_large",
        f"the request body is larger than {limit} bytes {what}; send less",
        headers={"Connection": "close"},
    )


async def read_limited(request: Request, max_bytes: int) -> bytes:
    """The raw body; 413 body_too_large as soon as it exceeds ``max_bytes``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes, "on the wire")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes, "on the wire")
        chunks.append(chunk)
    return b"".join(chunks)


def decode(raw: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """The body after Content-Encoding (identity or gzip), at most ``max_bytes`` long."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "identity":
        if len(raw) > max_bytes:
            raise _too_large(max_bytes, "decompressed")
        return raw
    if encoding != "gzip":
        raise ApiError(
            415, "unsupported_media_type",
            f"Content-Encoding {encoding!r} is not supported; send gzip or nothing",
        )
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    out: list[bytes] = []
    size = 0
    pending = raw
    try:
        while pending:
            piece = inflater.decompress(pending, max_bytes - size + 1)
            size += len(piece)
            if size > max_bytes:
                raise _too_large(max_bytes, "decompressed")
            out.append(piece)
            if inflater.eof:
                break
            pending = inflater.unconsumed_tail
        tail = inflater.flush()
    except zlib.error as exc:
        raise ApiError(400, "bad_encoding", f"the body is not valid gzip: {exc}") from exc
    if not inflater.eof:
        raise ApiError(400, "bad_encoding", "the gzip stream is truncated")
    if inflater.unused_data:
        raise ApiError(400, "bad_encoding", "data follows the end of the gzip stream")
    size += len(tail)
    if size > max_bytes:
        raise _too_large(max_bytes, "decompressed")
    out.append(tail)
    return b"".join(out)


class BodyLimits:
    """Pure ASGI middleware: each request's body bounded by its route's limit.

    ``limits`` maps route paths as declared (``/api/v1/alerts/{action}``) to
    bytes; any other path gets ``default``. A response sent before a chunked
    body was read to its end closes the connection, so the server does not go
    on receiving (and discarding) what a client may keep sending for ever.
    """

    def __init__(self, app: ASGIApp, default: int, limits: Mapping[str, int]) -> None:
        self.app = app
        self.default = default
        self.limits = [(compile_path(path)[0], limit) for path, limit in limits.items()]

    def limit_for(self, path: str) -> int:
        for pattern, limit in self.limits:
            if pattern.match(path):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        headers = Headers(scope=scope)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            error = _too_large(limit, "for this route")
            refusal = error_response(error.status, error.code, error.detail, headers=error.headers)
            await refusal(scope, receive, send)
            return
        # A declared body within the limit costs the server little to drain; a chunked one
        # could go on for ever.
        streamed = not declared and "transfer-encoding" in headers
        received = 0
        finished = not streamed

        async def counted() -> Message:
            nonlocal received, finished
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _too_large(limit, "for this route")
                finished = not message.get("more_body", False)
            return message

        async def closing(message: Message) -> None:
            if message["type"] == "http.response.start" and not finished \
                    and b"connection" not in dict(message.get("headers", [])):
                message = {**message, "headers": [
                    *message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        await self.app(scope, counted, closing)

