"""Text parts out of .docx, .pdf, .txt, .ofd and (with a converter) .doc/.wps files.

Every extractor is bounded: the file size, the number of zip entries, the
bytes inflated per entry and in total (a lying zip header cannot get past a
counted read), the compression ratio, the page count and the text length.
XML is never given a DTD: Office and OFD files have none, so one is refused
outright (no entity expansion, no external fetches), and OFD pages are parsed
with defusedxml under a nesting limit. Anything a file cannot satisfy raises
``ExtractionError`` with a message a clerk can act on; callers that handle
untrusted files run this in a worker process with memory and CPU limits
(``agent.detectors.documents.checker.worker``).

Offsets in findings refer to a part's ``text`` exactly as returned here; the
``Segment`` lists let ``agent.detectors.documents.checker.fix`` write changes back into the XML.
"""

from __future__ import annotations

import html
import io
import re
import shutil
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Final

from agent.detectors.documents.checker.context import Part

SUPPORTED_SUFFIXES: Final = (".docx", ".pdf", ".txt", ".ofd", ".doc", ".wps")


class ExtractionError(Exception):
    """The file cannot be checked; the message (Chinese) says why and what to do."""


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 64 * 1024 * 1024
    max_zip_entries: int = 5000
    max_entry_bytes: int = 64 * 1024 * 1024
    max_total_bytes: int = 256 * 1024 * 1024
    max_ratio: int = 200
    max_pages: int = 3000
    max_text_chars: int = 20_000_000
    max_xml_depth: int = 200
    converter_timeout_s: float = 60.0


DEFAULT_LIMITS: Final = Limits()


@dataclass(frozen=True)
class Segment:
    """A run of text inside an XML entry: where it sits in the entry and in the part's text."""

    entry: str
    xml_start: int
    xml_end: int
    text_start: int
    text_end: int


@dataclass
class Extracted:
    parts: list[Part]
    #: For .docx: per part name, the XML runs its text came from (used by --fix).
    segments: dict[str, list[Segment]] = field(default_factory=dict)
    #: For .docx: the XML of each entry read, decoded.
    xml: dict[str, str] = field(default_factory=dict)
    #: For .docx: per part name, the text offset where each ``<w:p>`` paragraph begins, in
    #: document order (empty paragraphs included, as Word counts them).
    paragraphs: dict[str, list[int]] = field(default_factory=dict)


def extract_file(path: Path, limits: Limits = DEFAULT_LIMITS) -> Extracted:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ExtractionError(f"无法读取文件：{exc.strerror}") from exc
    if size > limits.max_file_bytes:
        raise ExtractionError(f"文件过大（{size} 字节，上限 {limits.max_file_bytes} 字节），未审查")
    suffix = path.suffix.lower()
    if suffix in (".doc", ".wps"):
        parts = _convert_legacy(path, limits)
        return Extracted([*parts, Part("filename", path.name)])
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ExtractionError(f"无法读取文件：{exc.strerror}") from exc
    return extract_bytes(data, path.name, limits)


def extract_bytes(data: bytes, filename: str, limits: Limits = DEFAULT_LIMITS) -> Extracted:
    if len(data) > limits.max_file_bytes:
        raise ExtractionError(
            f"文件过大（{len(data)} 字节，上限 {limits.max_file_bytes} 字节），未审查"
        )
    suffix = PurePosixPath(filename).suffix.lower()
    if suffix == ".txt":
        extracted = Extracted([Part("body", decode_text(data, limits))])
    elif suffix == ".docx":
        extracted = _docx(data, limits)
    elif suffix == ".pdf":
        extracted = Extracted(_pdf(data, limits))
    elif suffix == ".ofd":
        extracted = Extracted(_ofd(data, limits))
    elif suffix in (".doc", ".wps"):
        with tempfile.TemporaryDirectory(prefix="courtguard-doc-") as tmp:
            source = Path(tmp) / f"document{suffix}"
            source.write_bytes(data)
            extracted = Extracted(_convert_legacy(source, limits))
    else:
        raise ExtractionError(
            f"不支持的文件类型“{suffix or '无扩展名'}”；支持 {'、'.join(SUPPORTED_SUFFIXES)}"
        )
    extracted.parts.append(Part("filename", filename))
    return extracted


def decode_text(data: bytes, limits: Limits = DEFAULT_LIMITS) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM, else GB18030; strict, never guessing past."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16")
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            try:
                text = data.decode("gb18030")
            except UnicodeDecodeError as exc:
                raise ExtractionError("文本文件既不是 UTF-8 也不是 GB18030 编码，无法解码") from exc
    if len(text) > limits.max_text_chars:
        raise ExtractionError(f"文本过长（超过 {limits.max_text_chars} 字符），未审查")
    if "\x00" in text[:4096]:
        raise ExtractionError("文件内容不是文本（含二进制数据）")
    return text


# ------------------------------------------------------------------ zip containers

_OLE_MAGIC: Final = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


class _Zip:
    """A zip read within limits: entry count, declared and counted sizes, ratio, encryption."""

    def __init__(self, data: bytes, limits: Limits, what: str) -> None:
        self.limits = limits
        self.total = 0
        if data.startswith(_OLE_MAGIC):
            raise ExtractionError(
                f"该{what}文件已加密（或是旧版 Office 格式），无法审查；请解除密码后另存再试"
            )
        try:
            self.zip = zipfile.ZipFile(io.BytesIO(data))
            infos = self.zip.infolist()
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
            raise ExtractionError(f"{what}文件已损坏（不是有效的 zip 容器）：{exc}") from exc
        if len(infos) > limits.max_zip_entries:
            raise ExtractionError(
                f"{what}文件包含 {len(infos)} 个条目（上限 {limits.max_zip_entries}），疑似恶意文件"
            )
        self.infos = {info.filename: info for info in infos}

    def names(self) -> list[str]:
        return list(self.infos)

    def read(self, name: str) -> bytes:
        info = self.infos[name]
        if info.flag_bits & 0x1:
            raise ExtractionError("文件内容已加密，无法审查")
        limit = self.limits.max_entry_bytes
        if info.file_size > limit:
            raise ExtractionError(f"条目 {name} 解压后过大（{info.file_size} 字节），疑似压缩炸弹")
        if (
            info.compress_size
            and info.file_size > 1024 * 1024
            and (info.file_size / info.compress_size > self.limits.max_ratio)
        ):
            raise ExtractionError(
                f"条目 {name} 压缩比异常（>{self.limits.max_ratio}），疑似压缩炸弹"
            )
        out = bytearray()
        try:
            with self.zip.open(info) as stream:
                while chunk := stream.read(1024 * 1024):
                    out += chunk
                    if len(out) > limit or self.total + len(out) > self.limits.max_total_bytes:
                        raise ExtractionError(f"条目 {name} 解压后超出上限，疑似压缩炸弹")
        except (zipfile.BadZipFile, zlib_error(), EOFError, OSError, NotImplementedError) as exc:
            raise ExtractionError(f"条目 {name} 已损坏：{exc}") from exc
        except RuntimeError as exc:  # zipfile raises this for encrypted entries
            raise ExtractionError(f"条目 {name} 已加密，无法审查") from exc
        self.total += len(out)
        return bytes(out)

    def xml(self, name: str) -> str:
        raw = self.read(name)
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            try:
                text = raw.decode("utf-16")
            except UnicodeDecodeError as exc:
                raise ExtractionError(f"条目 {name} 不是有效的 XML 文本") from exc
        if re.search(r"<!(?:DOCTYPE|ENTITY)", text[:65536], re.IGNORECASE) or "<!ENTITY" in text:
            raise ExtractionError(f"条目 {name} 含 DTD 或实体声明，已拒绝（疑似恶意 XML）")
        return text


def zlib_error() -> type[Exception]:
    import zlib

    return zlib.error


# ------------------------------------------------------------------ .docx

_DOCX_TOKEN: Final = re.compile(
    r"<w:p(?=[\s>/])[^>]*?(?P<selfclosed>/)?>|</w:p>"
    r"|<w:(?P<tag>t|delText)(?:\s[^>]*)?>(?P<text>[^<]*)</w:(?P=tag)>"
    r"|<w:tab/>|<w:br(?:\s[^>]*)?/>|<w:cr/>"
)
_PROPERTY_TOKEN: Final = re.compile(
    r"<(?P<tag>dc:title|dc:subject|dc:creator|cp:keywords|dc:description|cp:lastModifiedBy"
    r"|cp:category|cp:contentStatus|Company|Manager|Template|vt:lpwstr|vt:lpstr)"
    r"(?:\s[^>]*)?>(?P<text>[^<]+)</(?P=tag)>"
)


class _PartBuilder:
    def __init__(self, name: str) -> None:
        self.name = name
        self.pieces: list[str] = []
        self.length = 0
        self.segments: list[Segment] = []
        self.paragraph_starts: list[int] = []

    def add(self, text: str, segment: tuple[str, int, int] | None = None) -> None:
        if segment is not None:
            self.segments.append(
                Segment(segment[0], segment[1], segment[2], self.length, self.length + len(text))
            )
        self.pieces.append(text)
        self.length += len(text)

    def newline(self) -> None:
        if self.pieces and not self.pieces[-1].endswith("\n"):
            self.add("\n")

    def text(self) -> str:
        return "".join(self.pieces)


def _docx_part_name(entry: str) -> str | None:
    stem = PurePosixPath(entry).stem
    if entry == "word/document.xml":
        return "body"
    for prefix in ("header", "footer"):
        if re.fullmatch(rf"word/{prefix}\d*\.xml", entry):
            return f"{prefix}:{stem[len(prefix) :] or '1'}"
    return {
        "word/footnotes.xml": "footnotes",
        "word/endnotes.xml": "endnotes",
        "word/comments.xml": "comments",
    }.get(entry)


def _docx(data: bytes, limits: Limits) -> Extracted:
    archive = _Zip(data, limits, ".docx ")
    if "word/document.xml" not in archive.infos:
        raise ExtractionError(".docx 文件缺少 word/document.xml，已损坏或不是 Word 文档")
    entries = sorted(
        (name for name in archive.names() if _docx_part_name(name)),
        key=lambda n: (n != "word/document.xml", n),
    )
    extracted = Extracted(parts=[])
    for entry in entries:
        part_name = _docx_part_name(entry) or entry
        xml = archive.xml(entry)
        extracted.xml[entry] = xml
        main = _PartBuilder(part_name)
        deleted = _PartBuilder("deleted" if part_name == "body" else f"deleted:{part_name}")
        for token in _DOCX_TOKEN.finditer(xml):
            raw = token.group()
            tag = token.group("tag")
            if tag is not None:
                target = main if tag == "t" else deleted
                text = html.unescape(token.group("text"))
                target.add(text, (entry, token.start("text"), token.end("text")))
            elif raw.startswith(("<w:p", "</w:p")):
                main.newline()
                deleted.newline()
                if raw.startswith("<w:p"):
                    main.paragraph_starts.append(main.length)
            elif raw == "<w:tab/>":
                main.add("\t")
            else:
                main.add("\n")
            if main.length > limits.max_text_chars:
                raise ExtractionError(f"文书文字过长（超过 {limits.max_text_chars} 字符），未审查")
        for builder in (main, deleted):
            if builder.segments:
                extracted.parts.append(Part(builder.name, builder.text()))
                extracted.segments[builder.name] = builder.segments
        if main.segments:
            extracted.paragraphs[main.name] = main.paragraph_starts
    properties = _PartBuilder("properties")
    for entry in ("docProps/core.xml", "docProps/app.xml", "docProps/custom.xml"):
        if entry not in archive.infos:
            continue
        xml = archive.xml(entry)
        extracted.xml[entry] = xml
        for token in _PROPERTY_TOKEN.finditer(xml):
            properties.add(html.unescape(token.group("text")), (entry, *token.span("text")))
            properties.add("\n")
    if properties.segments:
        extracted.parts.append(Part("properties", properties.text()))
        extracted.segments["properties"] = properties.segments
    return extracted


# ------------------------------------------------------------------ .pdf


def _pdf_annotations(page: Any) -> list[str]:
    """Text of a page's annotations (sticky notes, free text): reviewers' comments."""
    notes = []
    for reference in page.get("/Annots") or []:
        annotation = reference.get_object()
        contents = annotation.get("/Contents")
        if contents:
            notes.append(str(contents))
    return notes


def _pdf(data: bytes, limits: Limits) -> list[Part]:
    import logging

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError, PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")
            except Exception as exc:  # pypdf raises several types for unsupported ciphers
                raise ExtractionError("PDF 已加密，无法审查；请解除密码后再试") from exc
            if not opened:
                raise ExtractionError("PDF 已加密，无法审查；请解除密码后再试")
        pages = reader.pages
        if len(pages) > limits.max_pages:
            raise ExtractionError(f"PDF 页数过多（{len(pages)} 页，上限 {limits.max_pages}）")
        parts: list[Part] = []
        total = 0
        for number, page in enumerate(pages, start=1):
            text = page.extract_text() or ""
            total += len(text)
            if total > limits.max_text_chars:
                raise ExtractionError(f"PDF 文字过长（超过 {limits.max_text_chars} 字符），未审查")
            parts.append(Part(f"page:{number}", text))
        notes = [note for page in pages for note in _pdf_annotations(page)]
        if notes:
            parts.append(Part("comments", "\n".join(notes)))
        metadata: Any = reader.metadata or {}
        fields = [
            str(metadata.get(key) or "") for key in ("/Title", "/Author", "/Subject", "/Keywords")
        ]
    except ExtractionError:
        raise
    except (
        PdfReadError,
        PyPdfError,
        ValueError,
        KeyError,
        TypeError,
        OSError,
        AssertionError,
    ) as exc:
        raise ExtractionError(f"PDF 文件已损坏或无法解析：{exc}") from exc
    if sum(len(p.text.strip()) for p in parts) < 10 * max(1, len(parts)) // 2:
        raise ExtractionError(
            "PDF 没有文本层（可能是扫描件），无法自动审查；请提供带文字的 PDF 或 .docx，或人工审查"
        )
    meta = "\n".join(f for f in fields if f)
    if meta:
        parts.append(Part("properties", meta))
    return parts


# ------------------------------------------------------------------ .ofd


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _parse_xml(xml: str, name: str, limits: Limits) -> list[tuple[str, dict[str, str], str]]:
    """Flat (tag, attributes, text) of every element, depth-limited, DTD-free (defusedxml)."""
    from xml.etree.ElementTree import ParseError

    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import iterparse

    out: list[tuple[str, dict[str, str], str]] = []
    depth = 0
    try:
        for event, element in iterparse(
            io.BytesIO(xml.encode()), events=("start", "end"), forbid_dtd=True
        ):
            if event == "start":
                depth += 1
                if depth > limits.max_xml_depth:
                    raise ExtractionError(
                        f"{name} 的 XML 嵌套过深（>{limits.max_xml_depth}），疑似恶意文件"
                    )
            else:
                depth -= 1
                out.append((_local(element.tag), dict(element.attrib), element.text or ""))
                element.clear()
    except (ParseError, DefusedXmlException) as exc:
        raise ExtractionError(f"{name} 不是有效的 XML：{exc}") from exc
    return out


def _ofd(data: bytes, limits: Limits) -> list[Part]:
    archive = _Zip(data, limits, " OFD ")
    if "OFD.xml" not in archive.infos:
        raise ExtractionError("OFD 文件缺少 OFD.xml，已损坏或不是 OFD 文档")
    root = _parse_xml(archive.xml("OFD.xml"), "OFD.xml", limits)
    doc_root = next((text.strip().lstrip("/") for tag, _, text in root if tag == "DocRoot"), "")
    meta = [
        text.strip()
        for tag, _, text in root
        if tag in ("Title", "Author", "Subject", "Keywords") and text.strip()
    ]
    pages: list[str] = []
    if doc_root in archive.infos:
        base = PurePosixPath(doc_root).parent
        for tag, attrs, _ in _parse_xml(archive.xml(doc_root), doc_root, limits):
            if tag == "Page" and attrs.get("BaseLoc"):
                location = attrs["BaseLoc"].lstrip("/")
                candidate = str(base / location) if not location.startswith(str(base)) else location
                pages.append(candidate)
    if not pages:
        pages = sorted(
            (n for n in archive.names() if re.search(r"Pages/Page_\d+/Content\.xml$", n)),
            key=lambda n: int(re.findall(r"Page_(\d+)", n)[-1]),
        )
    if len(pages) > limits.max_pages:
        raise ExtractionError(f"OFD 页数过多（{len(pages)} 页，上限 {limits.max_pages}）")
    parts: list[Part] = []
    for number, page in enumerate(pages, start=1):
        if page not in archive.infos:
            raise ExtractionError(f"OFD 页面 {page} 缺失，文件已损坏")
        lines: list[str] = []
        current: list[str] = []
        for tag, _, text in _parse_xml(archive.xml(page), page, limits):
            if tag == "TextCode":
                current.append(text)
            elif tag == "TextObject":
                lines.append("".join(current))
                current = []
        if current:
            lines.append("".join(current))
        parts.append(Part(f"page:{number}", "\n".join(lines)))
    if not any(p.text.strip() for p in parts):
        raise ExtractionError("OFD 没有文字层（可能是扫描件），无法自动审查；请人工审查")
    if meta:
        parts.append(Part("properties", "\n".join(meta)))
    return parts


# ------------------------------------------------------------------ .doc / .wps


def converter_available() -> str | None:
    for tool in ("antiword", "soffice", "libreoffice"):
        if shutil.which(tool):
            return tool
    return None


def _convert_legacy(path: Path, limits: Limits) -> list[Part]:
    tool = converter_available()
    suffix = path.suffix.lower()
    if tool is None:
        raise ExtractionError(
            f"本机未安装 antiword 或 LibreOffice，无法读取 {suffix} 文件；请另存为 .docx 后再审查"
        )
    if tool == "antiword" and suffix == ".wps" and not shutil.which("soffice"):
        raise ExtractionError("antiword 不能读取 .wps 文件；请安装 LibreOffice 或另存为 .docx")
    try:
        if tool == "antiword" and suffix == ".doc":
            done = subprocess.run(  # noqa: S603  (fixed tool, path as one argument)
                [shutil.which("antiword") or "antiword", "-m", "UTF-8.txt", "-w", "0", str(path)],
                capture_output=True,
                timeout=limits.converter_timeout_s,
                check=False,
            )
            if done.returncode != 0:
                message = done.stderr.decode("utf-8", "replace").strip()[:200]
                raise ExtractionError(f"antiword 无法读取该文件（可能已加密或损坏）：{message}")
            return [Part("body", decode_text(done.stdout, limits))]
        office = shutil.which("soffice") or shutil.which("libreoffice") or "soffice"
        with tempfile.TemporaryDirectory(prefix="courtguard-convert-") as out:
            done = subprocess.run(  # noqa: S603  (fixed tool, path as one argument)
                [
                    office,
                    "--headless",
                    "--norestore",
                    f"-env:UserInstallation=file://{out}/profile",
                    "--convert-to",
                    "txt:Text (encoded):UTF8",
                    "--outdir",
                    out,
                    str(path),
                ],
                capture_output=True,
                timeout=limits.converter_timeout_s,
                check=False,
            )
            produced = Path(out) / (path.stem + ".txt")
            if done.returncode != 0 or not produced.exists():
                raise ExtractionError("LibreOffice 无法转换该文件（可能已加密或损坏）")
            return [Part("body", decode_text(produced.read_bytes(), limits))]
    except subprocess.TimeoutExpired as exc:
        raise ExtractionError(f"转换超时（{limits.converter_timeout_s:.0f} 秒），未审查") from exc
