# ruff: noqa: E501  (judgment text reads best on one line)
"""Extraction of every format and part, and hostile files: each a clear error, bounded."""

from __future__ import annotations

import io
import shutil
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from agent.detectors.documents.checker.extract import (
    DEFAULT_LIMITS,
    ExtractionError,
    decode_text,
    extract_bytes,
    extract_file,
)
from tests.agent.detectors.documents.docfiles import DocxContent, write_docx, write_ofd, write_pdf

LINES = [
    "北京市朝阳区人民法院",
    "刑事判决书",
    "被告人张三，男，1990年5月1日出生。",
    "证人赵六的证言。",
]


def test_docx_every_part(tmp_path: Path) -> None:
    content = DocxContent(
        LINES,
        table=[["证人", "钱七"]],
        header="页眉王五",
        footer="页脚孙八",
        footnote="脚注周九",
        comment="批注吴十",
        deleted="删除郑一",
        textbox="文本框冯二",
        title="标题陈三",
        author="作者褚四",
        company="单位卫五",
    )
    parts = {
        p.name: p.text for p in extract_file(write_docx(tmp_path / "张三.docx", content)).parts
    }
    assert (
        "被告人张三，男" in parts["body"]
        and "钱七" in parts["body"]
        and "文本框冯二" in parts["body"]
    )
    assert parts["header:1"].strip() == "页眉王五"
    assert parts["footer:1"].strip() == "页脚孙八"
    assert parts["footnotes"].strip() == "脚注周九"
    assert parts["comments"].strip() == "批注吴十"
    assert parts["deleted"].strip() == "删除郑一"
    assert parts["properties"].split() == ["标题陈三", "作者褚四", "单位卫五"]
    assert parts["filename"] == "张三.docx"


def test_txt_utf8_gb18030_and_garbage() -> None:
    text = "被告人张三，住址测试。"
    assert decode_text(text.encode("gb18030")) == text
    assert decode_text(b"\xef\xbb\xbf" + text.encode()) == text
    assert decode_text(text.encode("utf-16")) == text
    with pytest.raises(ExtractionError, match="二进制"):
        decode_text(b"\x00\x01\x02abc")


def test_pdf_text_layer_and_none(tmp_path: Path) -> None:
    parts = extract_file(write_pdf(tmp_path / "a.pdf", LINES, title="张三案")).parts
    assert "被告人张三" in parts[0].text and parts[0].name == "page:1"
    from reportlab.pdfgen import canvas

    blank = tmp_path / "scan.pdf"
    page = canvas.Canvas(str(blank))
    page.rect(10, 10, 100, 100)
    page.save()
    with pytest.raises(ExtractionError, match="没有文本层"):
        extract_file(blank)


def test_ofd_pages_and_title(tmp_path: Path) -> None:
    parts = {
        p.name: p.text
        for p in extract_file(write_ofd(tmp_path / "a.ofd", [LINES[:2], LINES[2:]], "张三")).parts
    }
    assert parts["page:1"].splitlines() == LINES[:2]
    assert parts["page:2"].splitlines() == LINES[2:]
    assert parts["properties"] == "张三"


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_zip_bomb_is_refused_quickly() -> None:
    bomb = _zip({"word/document.xml": b"<w:t>" + b"A" * (300 * 1024 * 1024) + b"</w:t>"})
    assert len(bomb) < 1024 * 1024
    with pytest.raises(ExtractionError, match=r"压缩炸弹|过大"):
        extract_bytes(bomb, "bomb.docx")


def test_lying_zip_header_stops_at_the_counted_limit() -> None:
    data = bytearray(_zip({"word/document.xml": b"<w:t>" + b"B" * (4 * 1024 * 1024) + b"</w:t>"}))
    limits = replace(DEFAULT_LIMITS, max_entry_bytes=1024 * 1024, max_ratio=10**9)
    # Patch the central directory's uncompressed size to claim 10 bytes.
    central = data.rfind(b"PK\x01\x02")
    data[central + 24 : central + 28] = (10).to_bytes(4, "little")
    with pytest.raises(ExtractionError):
        extract_bytes(bytes(data), "liar.docx", limits)


def test_too_many_entries_encrypted_corrupt_and_dtd() -> None:
    many = _zip({f"f{i}.xml": b"x" for i in range(DEFAULT_LIMITS.max_zip_entries + 1)})
    with pytest.raises(ExtractionError, match="条目"):
        extract_bytes(many, "many.docx")
    with pytest.raises(ExtractionError, match="加密"):
        extract_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "secret.docx")
    with pytest.raises(ExtractionError, match="损坏"):
        extract_bytes(b"PK\x03\x04 not really a zip", "broken.docx")
    billion = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
        b"<w:document><w:body><w:p><w:r><w:t>&lol2;</w:t></w:r></w:p></w:body></w:document>"
    )
    with pytest.raises(ExtractionError, match="DTD"):
        extract_bytes(_zip({"word/document.xml": billion}), "lol.docx")
    with pytest.raises(ExtractionError, match=r"损坏|无法解析"):
        extract_bytes(b"%PDF-1.4\n garbage", "broken.pdf")
    with pytest.raises(ExtractionError, match="不支持"):
        extract_bytes(b"hello", "a.xlsx")


def test_deeply_nested_ofd_xml(tmp_path: Path) -> None:
    depth = 100_000
    page = b"<Page>" + b"<a>" * depth + b"</a>" * depth + b"</Page>"
    data = _zip(
        {
            "OFD.xml": b"<OFD><DocBody><DocRoot>Doc_0/Document.xml</DocRoot></DocBody></OFD>",
            "Doc_0/Document.xml": b'<Document><Pages><Page BaseLoc="Pages/Page_0/Content.xml"/></Pages></Document>',
            "Doc_0/Pages/Page_0/Content.xml": page,
        }
    )
    with pytest.raises(ExtractionError, match="嵌套过深"):
        extract_bytes(data, "deep.ofd")


def test_huge_file_refused_before_reading(tmp_path: Path) -> None:
    huge = tmp_path / "huge.txt"
    with huge.open("wb") as out:
        out.truncate(DEFAULT_LIMITS.max_file_bytes + 1)
    with pytest.raises(ExtractionError, match="过大"):
        extract_file(huge)


@pytest.mark.skipif(
    shutil.which("antiword") or shutil.which("soffice") or shutil.which("libreoffice"),
    reason="a converter is installed here; this checks the message when none is",
)
def test_doc_without_converter_says_so(tmp_path: Path) -> None:
    legacy = tmp_path / "old.doc"
    legacy.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600)
    with pytest.raises(ExtractionError, match="antiword 或 LibreOffice"):
        extract_file(legacy)


def test_pdf_annotations_and_docx_custom_properties(tmp_path: Path) -> None:
    from pypdf import PdfReader, PdfWriter
    from pypdf.annotations import Text

    source = write_pdf(tmp_path / "a.pdf", LINES)
    writer = PdfWriter(clone_from=PdfReader(source))
    writer.add_annotation(0, Text(text="核对王小明的电话", rect=(50, 550, 200, 650)))
    annotated = tmp_path / "annotated.pdf"
    with annotated.open("wb") as out:
        writer.write(out)
    parts = {p.name: p.text for p in extract_file(annotated).parts}
    assert parts["comments"] == "核对王小明的电话"

    docx = write_docx(tmp_path / "b.docx", DocxContent(LINES))
    with zipfile.ZipFile(docx, "a") as archive:
        archive.writestr(
            "docProps/custom.xml",
            '<Properties xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes">'
            '<property name="当事人"><vt:lpwstr>张三丰</vt:lpwstr></property></Properties>',
        )
    parts = {p.name: p.text for p in extract_file(docx).parts}
    assert "张三丰" in parts["properties"]


def test_encrypted_pdf_says_so(tmp_path: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(write_pdf(tmp_path / "a.pdf", LINES)))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="AES-128")  # noqa: S106 (a test PDF's password)
    locked = tmp_path / "locked.pdf"
    with locked.open("wb") as out:
        writer.write(out)
    with pytest.raises(ExtractionError, match="已加密"):
        extract_file(locked)
