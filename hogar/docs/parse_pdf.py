"""PDF through pypdf's text layer: one Section per paragraph per page (page 1-based), its lines as pypdf extracts them.
pypdf gives lines without blank lines between paragraphs, so the lines' positions decide: a paragraph ends where the
gap to the next line is clearly wider than the page's usual line pitch, where the text jumps up (a new column), where
the font size changes (a heading), or after a line much shorter than the page's full lines."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

from hogar.docs.parsers import Builder
from hogar.docs.types import Document, DocumentError

_LIGATURES = str.maketrans({"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl",
                            "\ufb05": "st", "\ufb06": "st", "\x00": ""})


def parse_pdf(name: str, data: bytes) -> Document:
    import pypdf

    # pypdf logs recoverable damage ("EOF marker not found") as warnings: the user gets our one line instead
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        encrypted = reader.is_encrypted
    except Exception as e:  # pypdf raises many kinds (PdfReadError, ValueError, KeyError...) on damaged files
        raise DocumentError(f"{name}: not a readable PDF ({_reason(e)})") from None
    if encrypted and not _decrypt(reader):
        raise DocumentError(f"{name}: the PDF is encrypted (password protected); save an unprotected copy")
    try:
        pages = list(reader.pages)
        title = _title(reader)
    except Exception as e:
        raise DocumentError(f"{name}: not a readable PDF ({_reason(e)})") from None
    out, failed = Builder(), 0
    for number, page in enumerate(pages, 1):
        try:
            lines = page_lines(page)
        except Exception:
            failed += 1  # one damaged page: keep the others
            continue
        for paragraph in paragraphs(lines):
            out.add(paragraph, page=number)
    if not out.sections:
        if failed:
            raise DocumentError(f"{name}: not a readable PDF (no page could be read)")
        raise DocumentError(f"{name}: the PDF has no text layer (scanned?); OCR it first")
    return out.document(name, "pdf", title=title, n_pages=len(pages))


@dataclass
class Line:
    text: str
    y: float | None = None  # the baseline, from the bottom of the page
    size: float = 0.0  # the largest font size on it


def page_lines(page) -> list[Line]:  # noqa: ANN001 - a pypdf PageObject
    """The page's text lines as pypdf's extract_text gives them, each with where it sits."""
    lines = [Line("")]

    def visit(text: str, cm: list[float], tm: list[float], font: object, size: float) -> None:
        for k, piece in enumerate(text.split("\n")):
            if k:
                lines.append(Line(""))
            line = lines[-1]
            line.text += piece
            if piece.strip():
                line.y = line.y if line.y is not None else tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
                line.size = max(line.size, abs(size * (tm[3] or 1) * (cm[3] or 1)))

    page.extract_text(visitor_text=visit)
    for line in lines:
        line.text = line.text.translate(_LIGATURES).rstrip()
    return lines


def paragraphs(lines: list[Line]) -> list[str]:
    full = sorted(len(line.text) for line in lines if line.text.strip())
    if not full:
        return []
    width = full[min(len(full) - 1, int(len(full) * 0.9))]  # a full line's length, robust to a few long ones
    placed = [line for line in lines if line.text.strip() and line.y is not None]
    pitches = sorted(a.y - b.y for a, b in zip(placed, placed[1:], strict=False) if a.y - b.y > 0)  # type: ignore
    pitch = pitches[len(pitches) // 2] if pitches else None
    out: list[str] = []
    current: list[Line] = []
    for line in lines:
        if not line.text.strip():
            if current:
                out.append("\n".join(x.text for x in current))
                current = []
            continue
        if current and _breaks(current[-1], line, pitch, width):
            out.append("\n".join(x.text for x in current))
            current = []
        current.append(line)
    if current:
        out.append("\n".join(x.text for x in current))
    return out


def _breaks(before: Line, line: Line, pitch: float | None, width: int) -> bool:
    """Whether a new paragraph starts at `line`."""
    if len(before.text) < 0.6 * width:
        return True
    if before.y is None or line.y is None:
        return False
    if pitch is not None and (before.y - line.y > 1.4 * pitch or line.y > before.y + 0.5 * pitch):
        return True
    return abs(before.size - line.size) > 0.5


def _decrypt(reader) -> bool:  # noqa: ANN001 - a pypdf.PdfReader
    try:  # many PDFs are encrypted with an empty user password (an owner password restricts printing only)
        return bool(reader.decrypt(""))
    except Exception:  # wrong password, or AES without the `cryptography` package
        return False


def _title(reader) -> str | None:  # noqa: ANN001
    meta = reader.metadata
    title = (meta.title if meta else None) or None
    return " ".join(str(title).split()) or None if title else None


def _reason(e: Exception) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:120]}" if text else type(e).__name__
