"""DOCX through python-docx: body paragraphs and tables in document order. Paragraph styles "Title" (level 0) and
"Heading N" build the heading path and are Sections of their own; a table is one Section, a row per line, cells
separated by tabs (a merged cell once)."""

from __future__ import annotations

import io
import re

from hogar.docs.parsers import Builder, HeadingPath
from hogar.docs.types import Document, DocumentError

_HEADING_STYLE = re.compile(r"(?:heading|überschrift|titre|título|titolo)\s*(\d)$", re.IGNORECASE)


def parse_docx(name: str, data: bytes) -> Document:
    import docx
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(data))
        blocks = list(document.iter_inner_content())
        title = document.core_properties.title
    except Exception as e:  # python-docx raises many kinds (PackageNotFoundError, KeyError, XML errors...)
        raise DocumentError(f"{name}: not a readable DOCX ({type(e).__name__})") from None
    out, headings = Builder(), HeadingPath()
    for block in blocks:
        try:
            if isinstance(block, Table):
                out.add(_table_text(block), heading=headings.path)
                continue
            text = block.text.strip()
            level = _heading_level(block.style.name if block.style is not None else "")
        except Exception as e:
            raise DocumentError(f"{name}: not a readable DOCX ({type(e).__name__})") from None
        if not text:
            continue
        if level is not None:
            path = headings.enter(level, text)
            out.add(" ".join(text.split()), heading=path)
            title = title or (text if level == 0 else None)
        else:
            out.add(text, heading=headings.path)
    return out.document(name, "docx", title=title)


def _heading_level(style: str) -> int | None:
    if style.lower() == "title":
        return 0
    match = _HEADING_STYLE.match(style.strip())
    return int(match.group(1)) if match else None


def _table_text(table) -> str:  # noqa: ANN001 - a docx.table.Table
    rows = []
    for row in table.rows:
        cells, seen = [], set()
        for cell in row.cells:
            if id(cell._tc) in seen:  # a merged cell is listed once per grid column it spans
                continue
            seen.add(id(cell._tc))
            cells.append(" ".join(cell.text.split()))
        if any(cells):
            rows.append("\t".join(cells))
    return "\n".join(rows)
