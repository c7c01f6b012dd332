# ruff: noqa: E501  (OOXML and OFD boilerplate reads best one element per line)
"""Write real .docx, .ofd, .pdf and .txt files for tests: the parts a clerk's file can carry.

The .docx writer builds the OOXML by hand (document, headers, footers,
footnotes, comments, tracked deletions, text boxes, tables, core and app
properties) so each part's content is known exactly; Word and LibreOffice
open what it writes.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


@dataclass
class DocxContent:
    paragraphs: list[str]
    table: list[list[str]] = field(default_factory=list)
    header: str = ""
    footer: str = ""
    footnote: str = ""
    comment: str = ""
    deleted: str = ""
    textbox: str = ""
    title: str = ""
    author: str = ""
    company: str = ""


def _run(text: str) -> str:
    # Split into several runs, as Word does after edits, so offsets cross run boundaries.
    if len(text) > 6:
        cut = len(text) // 3
        pieces = [text[:cut], text[cut : 2 * cut], text[2 * cut :]]
    else:
        pieces = [text]
    return "".join(
        f'<w:r><w:rPr><w:rFonts w:hint="eastAsia"/></w:rPr><w:t xml:space="preserve">{escape(p)}</w:t></w:r>'
        for p in pieces
        if p
    )


def _paragraph(text: str) -> str:
    return f'<w:p><w:pPr><w:jc w:val="both"/></w:pPr>{_run(text)}</w:p>'


def write_docx(path: Path, content: DocxContent) -> Path:
    body = [_paragraph(p) for p in content.paragraphs]
    if content.table:
        rows = "".join(
            "<w:tr>" + "".join(f"<w:tc><w:tcPr/>{_paragraph(c)}</w:tc>" for c in row) + "</w:tr>"
            for row in content.table
        )
        body.insert(3, f"<w:tbl><w:tblPr/>{rows}</w:tbl>")
    if content.deleted:
        body.append(
            '<w:p><w:del w:id="1" w:author="clerk" w:date="2024-01-01T00:00:00Z"><w:r>'
            f'<w:delText xml:space="preserve">{escape(content.deleted)}</w:delText></w:r></w:del></w:p>'
        )
    if content.textbox:
        body.append(
            '<w:p><w:r><w:pict><v:shape xmlns:v="urn:schemas-microsoft-com:vml"><v:textbox>'
            f"<w:txbxContent>{_paragraph(content.textbox)}</w:txbxContent></v:textbox></v:shape>"
            "</w:pict></w:r></w:p>"
        )
    if content.comment:
        body.append(
            '<w:p><w:commentRangeStart w:id="0"/><w:r><w:t>。</w:t></w:r><w:commentRangeEnd w:id="0"/>'
            '<w:r><w:commentReference w:id="0"/></w:r></w:p>'
        )
    if content.footnote:
        body.append('<w:p><w:r><w:footnoteReference w:id="2"/></w:r></w:p>')
    sect = "<w:sectPr>"
    if content.header:
        sect += '<w:headerReference w:type="default" r:id="rIdHeader1"/>'
    if content.footer:
        sect += '<w:footerReference w:type="default" r:id="rIdFooter1"/>'
    sect += '<w:pgSz w:w="11906" w:h="16838"/></w:sectPr>'
    document = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<w:document xmlns:w="{W}" xmlns:r="{R}"><w:body>{"".join(body)}{sect}</w:body></w:document>'
    )
    rels = [
        '<Relationship Id="rIdStyles" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>'
    ]
    overrides = [
        '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>',
        '<Override PartName="/word/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.styles+xml"/>',
        '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>',
        '<Override PartName="/docProps/app.xml" ContentType="application/vnd.openxmlformats-officedocument.extended-properties+xml"/>',
    ]
    files: dict[str, str] = {
        "word/document.xml": document,
        "word/styles.xml": f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:styles xmlns:w="{W}"/>',
    }

    def story(tag: str, inner: str) -> str:
        return f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:{tag} xmlns:w="{W}" xmlns:r="{R}">{inner}</w:{tag}>'

    if content.header:
        files["word/header1.xml"] = story("hdr", _paragraph(content.header))
        rels.append(
            '<Relationship Id="rIdHeader1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/header" Target="header1.xml"/>'
        )
        overrides.append(
            '<Override PartName="/word/header1.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.header+xml"/>'
        )
    if content.footer:
        files["word/footer1.xml"] = story("ftr", _paragraph(content.footer))
        rels.append(
            '<Relationship Id="rIdFooter1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/footer" Target="footer1.xml"/>'
        )
        overrides.append(
            '<Override PartName="/word/footer1.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.footer+xml"/>'
        )
    if content.comment:
        files["word/comments.xml"] = story(
            "comments",
            f'<w:comment w:id="0" w:author="clerk">{_paragraph(content.comment)}</w:comment>',
        )
        rels.append(
            '<Relationship Id="rIdComments" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/comments" Target="comments.xml"/>'
        )
        overrides.append(
            '<Override PartName="/word/comments.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.comments+xml"/>'
        )
    if content.footnote:
        files["word/footnotes.xml"] = story(
            "footnotes",
            '<w:footnote w:type="separator" w:id="-1"><w:p/></w:footnote>'
            '<w:footnote w:type="continuationSeparator" w:id="0"><w:p/></w:footnote>'
            f'<w:footnote w:id="2">{_paragraph(content.footnote)}</w:footnote>',
        )
        rels.append(
            '<Relationship Id="rIdFootnotes" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/footnotes" Target="footnotes.xml"/>'
        )
        overrides.append(
            '<Override PartName="/word/footnotes.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.footnotes+xml"/>'
        )
    files["word/_rels/document.xml.rels"] = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        + "".join(rels)
        + "</Relationships>"
    )
    files["docProps/core.xml"] = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<dc:title>{escape(content.title)}</dc:title><dc:creator>{escape(content.author)}</dc:creator>"
        "</cp:coreProperties>"
    )
    files["docProps/app.xml"] = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
        f"<Company>{escape(content.company)}</Company></Properties>"
    )
    files["[Content_Types].xml"] = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>' + "".join(overrides) + "</Types>"
    )
    files["_rels/.rels"] = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>'
        '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml"/>'
        '<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/extended-properties" Target="docProps/app.xml"/>'
        "</Relationships>"
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in (
            "[Content_Types].xml",
            "_rels/.rels",
            *sorted(k for k in files if k not in ("[Content_Types].xml", "_rels/.rels")),
        ):
            archive.writestr(name, files[name])
    return path


def write_ofd(path: Path, pages: list[list[str]], title: str = "") -> Path:
    """A minimal OFD (GB/T 33190): OFD.xml → Document.xml → one Content.xml per page."""
    ns = 'xmlns:ofd="http://www.ofdspec.org/2016"'
    page_refs = "".join(
        f'<ofd:Page ID="{i + 10}" BaseLoc="Pages/Page_{i}/Content.xml"/>' for i in range(len(pages))
    )
    files = {
        "OFD.xml": f'<?xml version="1.0" encoding="UTF-8"?><ofd:OFD {ns} Version="1.0" DocType="OFD">'
        f"<ofd:DocBody><ofd:DocInfo><ofd:DocID>0</ofd:DocID><ofd:Title>{escape(title)}</ofd:Title></ofd:DocInfo>"
        "<ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>",
        "Doc_0/Document.xml": f'<?xml version="1.0" encoding="UTF-8"?><ofd:Document {ns}>'
        "<ofd:CommonData><ofd:MaxUnitID>999</ofd:MaxUnitID><ofd:PageArea><ofd:PhysicalBox>0 0 210 297</ofd:PhysicalBox></ofd:PageArea></ofd:CommonData>"
        f"<ofd:Pages>{page_refs}</ofd:Pages></ofd:Document>",
    }
    for index, lines in enumerate(pages):
        objects = "".join(
            f'<ofd:TextObject ID="{100 + n}" Boundary="20 {20 + 6 * n} 170 6" Font="1" Size="4">'
            f'<ofd:TextCode X="0" Y="4">{escape(line)}</ofd:TextCode></ofd:TextObject>'
            for n, line in enumerate(lines)
        )
        files[f"Doc_0/Pages/Page_{index}/Content.xml"] = (
            f'<?xml version="1.0" encoding="UTF-8"?><ofd:Page {ns}><ofd:Content><ofd:Layer ID="2">'
            f"{objects}</ofd:Layer></ofd:Content></ofd:Page>"
        )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


def write_pdf(path: Path, lines: list[str], title: str = "") -> Path:
    """A text-layer PDF with reportlab's built-in CJK font (no font files needed)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    page = canvas.Canvas(str(path), pagesize=A4)
    page.setTitle(title)
    y = 800
    for line in lines:
        if y < 60:
            page.showPage()
            y = 800
        page.setFont("STSong-Light", 11)
        page.drawString(40, y, line)
        y -= 18
    page.save()
    return path
