"""Read a request body within limits: bounded bytes on the wire, bounded bytes after gzip.

Nothing here buffers more than it must: the raw body is refused as soon as it
passes ``max_body_bytes`` (or at once, when Content-Length says it will), and
gzip is inflated with ``max_length`` so a bomb stops at ``max_decompressed_bytes``.
"""

from __future__ import annotations

import zlib

from starlette.requests import Request

from collector.errors import ApiError


def _too_large(limit: int, what: str) -> ApiError:
    # Connection: close makes the server drop the connection instead of draining the rest.
    return ApiError(
        413, "body_too_large",
        f"the request body is larger than {limit} bytes {what}; send smaller batches",
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
