"""Where published documents are read from: a directory, or an HTTP(S) listing on a mirror.

A source lists its documents (``Entry``) and fetches one given what the store
last saw of it (``Seen``), answering ``UNCHANGED`` without reading the
document when it can tell (directory: same size and modification time;
HTTP: the listing's ETag or size and time equal, or the mirror answering 304
to a conditional GET with ``If-None-Match`` / ``If-Modified-Since``), ``GONE``
when the document is no longer there, or the bytes with what identifies them.

HTTP listings (docs/documents.md, "Patrol"):

- **HTML**: any page of links (a web server's directory index, or a page the
  publication system writes). Links to files with a checked extension are
  documents; links ending in ``/`` below the listing are sub-listings, read
  down to ``max_listing_depth``. Links to other hosts or outside the
  listing's path are ignored.
- **JSON** (``Content-Type: application/json``): ``{"documents": [...]}`` or a
  bare list; each item is a URL (relative to the listing) or an object with
  ``url`` and optionally ``etag``, ``size`` and ``modified`` (as the mirror
  would send ``Last-Modified``), which spare the request for unchanged ones.

A listing that cannot be read fails the whole source for this pass
(``ListingError``): nothing is taken for withdrawn on a mirror that is down.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from typing import Any, Final, Protocol
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

import httpx

from agent.detectors.documents.checker.extract import SUPPORTED_SUFFIXES
from agent.version import __version__ as AGENT_VERSION
from collector.patrol.settings import PatrolSettings, PatrolSource

USER_AGENT: Final = f"courtguard-collector-patrol/{AGENT_VERSION}"
#: Listing pages read from one source in one pass; more fails the listing (nothing is then
#: taken for withdrawn), since a partial listing would make the rest look withdrawn.
MAX_LISTING_PAGES: Final = 10_000


class ListingError(Exception):
    """The source cannot be listed now; the message (Chinese) says why."""


class DocumentError(Exception):
    """One document cannot be read now; the message (Chinese) says why."""


@dataclass(frozen=True)
class Entry:
    """A document a listing names."""

    key: str  # the URL, or the path below the directory (POSIX separators)
    name: str  # its file name: the extension picks the format, and the name is checked too
    display: str  # what people read: the path, or the URL's path decoded
    size: int | None = None
    mtime_ns: int | None = None
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class Seen:
    """What the store holds about a document from the last pass that read it."""

    key: str
    etag: str | None = None
    last_modified: str | None = None
    size: int | None = None
    mtime_ns: int | None = None
    sha256: str | None = None
    verdict: str | None = None
    error: str | None = None
    event_id: str | None = None


@dataclass(frozen=True)
class Fetched:
    data: bytes
    etag: str | None = None
    last_modified: str | None = None
    mtime_ns: int | None = None


class _Mark:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


UNCHANGED: Final = _Mark("UNCHANGED")
GONE: Final = _Mark("GONE")
Outcome = Fetched | _Mark


class Source(Protocol):
    name: str

    async def entries(self) -> list[Entry]: ...

    async def fetch(self, entry: Entry, seen: Seen | None) -> Outcome: ...

    async def aclose(self) -> None: ...


def is_document(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in SUPPORTED_SUFFIXES and not name.startswith("~$")


class DirectorySource:
    """A directory or mounted export, walked recursively (links to folders not followed)."""

    def __init__(self, config: PatrolSource, max_document_bytes: int) -> None:
        assert config.directory is not None  # noqa: S101 (PatrolSource guarantees it)
        self.name = config.name
        self.root = config.directory
        self.max_document_bytes = max_document_bytes

    def _walk(self) -> list[Entry]:
        if not self.root.is_dir():
            raise ListingError(f"目录 {self.root} 不存在或无法访问")
        found: list[Entry] = []
        for folder, dirs, names in os.walk(self.root):
            dirs.sort()
            for name in sorted(names):
                if not is_document(name):
                    continue
                path = Path(folder) / name
                try:
                    stat = path.stat()
                except OSError:
                    continue  # removed while walking: it is simply not listed
                relative = path.relative_to(self.root).as_posix()
                found.append(Entry(relative, name, relative, stat.st_size, stat.st_mtime_ns))
        return found

    async def entries(self) -> list[Entry]:
        return await asyncio.to_thread(self._walk)

    def _read(self, entry: Entry) -> Outcome:
        path = self.root / entry.key
        try:
            with path.open("rb") as handle:
                stat = os.fstat(handle.fileno())
                limit = self.max_document_bytes
                if stat.st_size > limit:
                    raise DocumentError(
                        f"文件过大（{stat.st_size} 字节，上限 {limit} 字节），未审查"
                    )
                data = handle.read(self.max_document_bytes + 1)
        except FileNotFoundError:
            return GONE
        except OSError as exc:
            raise DocumentError(f"无法读取文件：{exc.strerror}") from exc
        if len(data) > self.max_document_bytes:
            raise DocumentError(f"文件过大（上限 {self.max_document_bytes} 字节），未审查")
        return Fetched(data, mtime_ns=stat.st_mtime_ns)

    async def fetch(self, entry: Entry, seen: Seen | None) -> Outcome:
        if seen is not None and (seen.size, seen.mtime_ns) == (entry.size, entry.mtime_ns):
            return UNCHANGED
        return await asyncio.to_thread(self._read, entry)

    async def aclose(self) -> None:
        return None


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            for name, value in attrs:
                if name == "href" and value:
                    self.hrefs.append(value)


def _text(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


class HttpListingSource:
    """An HTML or JSON listing on a mirror, its documents fetched conditionally and paced."""

    def __init__(
        self, config: PatrolSource, settings: PatrolSettings, max_document_bytes: int
    ) -> None:
        assert config.url is not None  # noqa: S101 (PatrolSource guarantees it)
        self.name = config.name
        self.url = config.url
        self.settings = settings
        self.max_document_bytes = max_document_bytes
        base = urlsplit(self.url)
        self.origin = (base.scheme, base.netloc)
        self.prefix = base.path.rsplit("/", 1)[0] + "/"
        verify: ssl.SSLContext | bool = True
        if config.ca_file is not None:
            try:
                verify = ssl.create_default_context(cafile=str(config.ca_file))
            except (OSError, ssl.SSLError) as exc:
                raise ListingError(f"无法读取法院 CA 证书 {config.ca_file}：{exc}") from exc
        self.client = httpx.AsyncClient(
            verify=verify,
            timeout=settings.timeout_s,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
        )
        self._last_request = 0.0

    async def _pace(self) -> None:
        wait = self._last_request + self.settings.request_interval_s - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._last_request = time.monotonic()

    def _inside(self, url: str) -> bool:
        parts = urlsplit(url)
        return (parts.scheme, parts.netloc) == self.origin and parts.path.startswith(self.prefix)

    async def _get_bounded(
        self, url: str, limit: int, headers: dict[str, str] | None = None
    ) -> tuple[httpx.Response, bytes]:
        await self._pace()
        async with self.client.stream("GET", url, headers=headers or {}) as response:
            declared = response.headers.get("content-length", "")
            if response.status_code == 200 and declared.isdigit() and int(declared) > limit:
                raise DocumentError(f"文件过大（{declared} 字节，上限 {limit} 字节），未审查")
            body = bytearray()
            if response.status_code == 200:
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > limit:
                        raise DocumentError(f"文件过大（超过 {limit} 字节），未审查")
            return response, bytes(body)

    async def _listing_page(self, url: str) -> tuple[httpx.Response, bytes]:
        try:
            response, body = await self._get_bounded(url, self.settings.max_listing_bytes)
        except DocumentError as exc:
            raise ListingError(f"清单 {url} 过大：{exc}") from exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise ListingError(f"无法读取清单 {url}：{exc.__class__.__name__} {exc}") from exc
        if response.status_code != 200:
            raise ListingError(f"清单 {url} 返回 HTTP {response.status_code}")
        return response, body

    def _entry(self, url: str, **meta: Any) -> Entry | None:
        url = urldefrag(url).url
        if not self._inside(url):
            return None
        path = unquote(urlsplit(url).path)
        name = PurePosixPath(path).name
        if not is_document(name):
            return None
        return Entry(url, name, path, **meta)

    def _json_entries(self, page: str, body: bytes) -> Iterator[Entry]:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ListingError(f"清单 {page} 不是有效的 JSON：{exc}") from exc
        items = data.get("documents") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise ListingError(f"清单 {page} 应为文书列表或含 documents 列表的对象")
        for item in items:
            if isinstance(item, str):
                item = {"url": item}
            if not isinstance(item, dict) or not isinstance(item.get("url"), str):
                continue
            size = item.get("size")
            entry = self._entry(
                urljoin(page, item["url"]),
                size=size if isinstance(size, int) and size >= 0 else None,
                etag=_text(item.get("etag"), 512),
                last_modified=_text(item.get("modified"), 64),
            )
            if entry is not None:
                yield entry

    async def entries(self) -> list[Entry]:
        found: dict[str, Entry] = {}
        pages = [(self.url, 0)]
        visited = {self.url}
        while pages:
            if len(visited) > MAX_LISTING_PAGES:
                raise ListingError(f"清单页超过 {MAX_LISTING_PAGES} 个，请缩小来源范围")
            page, depth = pages.pop(0)
            response, body = await self._listing_page(page)
            if "json" in response.headers.get("content-type", ""):
                for entry in self._json_entries(page, body):
                    found.setdefault(entry.key, entry)
                continue
            links = _Links()
            links.feed(body.decode(response.encoding or "utf-8", errors="replace"))
            for href in links.hrefs:
                url = urldefrag(urljoin(page, href)).url
                if urlsplit(url).query:
                    continue  # sort orders and the like of a server's index
                if url.endswith("/"):
                    deeper = depth < self.settings.max_listing_depth and len(url) > len(page)
                    if deeper and self._inside(url) and url not in visited:
                        visited.add(url)
                        pages.append((url, depth + 1))
                    continue
                linked = self._entry(url)
                if linked is not None:
                    found.setdefault(linked.key, linked)
        return list(found.values())

    async def fetch(self, entry: Entry, seen: Seen | None) -> Outcome:
        if seen is not None and seen.sha256 is not None:
            if entry.etag is not None and entry.etag == seen.etag:
                return UNCHANGED
            if (
                entry.etag is None
                and entry.size is not None
                and entry.last_modified is not None
                and (entry.size, entry.last_modified) == (seen.size, seen.last_modified)
            ):
                return UNCHANGED
        headers: dict[str, str] = {}
        if seen is not None and seen.sha256 is not None:
            if seen.etag:
                headers["If-None-Match"] = seen.etag
            if seen.last_modified:
                headers["If-Modified-Since"] = seen.last_modified
        try:
            response, body = await self._get_bounded(entry.key, self.max_document_bytes, headers)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise DocumentError(f"无法下载：{exc.__class__.__name__} {exc}") from exc
        if response.status_code == 304:
            return UNCHANGED
        if response.status_code in (404, 410):
            return GONE
        if response.status_code != 200:
            raise DocumentError(f"镜像返回 HTTP {response.status_code}")
        return Fetched(
            body,
            etag=_text(response.headers.get("etag"), 512),
            last_modified=_text(response.headers.get("last-modified"), 64),
        )

    async def aclose(self) -> None:
        await self.client.aclose()


def make_source(
    config: PatrolSource, settings: PatrolSettings, max_document_bytes: int
) -> DirectorySource | HttpListingSource:
    if config.directory is not None:
        return DirectorySource(config, max_document_bytes)
    return HttpListingSource(config, settings, max_document_bytes)
