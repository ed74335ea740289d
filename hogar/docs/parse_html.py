"""HTML through BeautifulSoup with the stdlib parser. Dropped: script, style, nav, page-level header and footer (those
inside <article>/<main> stay: they often hold the article's title), forms' widgets. h1-h6 build the heading path
and are Sections of their own; every other block element (p, li, div, blockquote, dd...) ends a Section of the text
seen since the last one, so a page made of bare <div>s reads right too; <pre> keeps its lines; a data table is one
Section, a row per line, cells separated by tabs. Title: <title>, else the first <h1>."""

from __future__ import annotations

import re

from hogar.docs.parsers import Builder, HeadingPath
from hogar.docs.types import Document, DocumentError

_DROP = {"script", "style", "title", "noscript", "template", "svg", "canvas", "iframe", "object", "head", "nav",
         "button", "select", "option", "textarea", "input", "map"}
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_BLOCKS = {"p", "li", "ul", "ol", "dl", "dt", "dd", "div", "section", "article", "main", "aside", "blockquote",
           "figure", "figcaption", "caption", "address", "details", "summary", "fieldset", "legend", "form",
           "header", "footer", "hr", "body", "html", "center", "tr", "td", "th", "thead", "tbody", "tfoot", "table"}


def parse_html(name: str, data: bytes) -> Document:
    from bs4 import BeautifulSoup

    try:
        soup = BeautifulSoup(data, "html.parser")
    except Exception as e:
        raise DocumentError(f"{name}: not readable HTML ({type(e).__name__})") from None
    title = " ".join(soup.title.get_text().split()) if soup.title else None
    walker = _Walker()
    walker.walk(soup)
    walker.flush()
    return walker.out.document(name, "html", title=title or walker.first_h1)


class _Walker:
    def __init__(self) -> None:
        self.out, self.headings = Builder(), HeadingPath()
        self.loose: list[str] = []
        self.first_h1: str | None = None

    def flush(self) -> None:
        text = _clean("".join(self.loose))
        self.loose = []
        self.out.add(text, heading=self.headings.path)

    def walk(self, root) -> None:  # noqa: ANN001 - a bs4 Tag
        """Depth first without recursion (pages can nest thousands deep); a block element ends the text before and
        inside it."""
        from bs4 import NavigableString

        stack = [(iter(root.children), False)]
        while stack:
            child = next(stack[-1][0], None)
            if child is None:
                if stack.pop()[1]:
                    self.flush()
                continue
            if isinstance(child, NavigableString):
                if type(child) is NavigableString:  # not a Comment, Doctype, CData...
                    self.loose.append(re.sub(r"\s+", " ", str(child)))
                continue
            tag = child.name
            if tag in _DROP or (tag in ("header", "footer") and child.find_parent(("article", "main")) is None):
                continue
            if tag in _HEADINGS:
                self.flush()
                text = _clean(_inline_text(child))
                if text:
                    self.out.add(text, heading=self.headings.enter(_HEADINGS[tag], text))
                    self.first_h1 = self.first_h1 or (text if tag == "h1" else None)
            elif tag == "pre":
                self.flush()
                self.out.add(child.get_text(), heading=self.headings.path)
            elif tag == "table" and child.find(("table", *_HEADINGS)) is None:
                self.flush()
                self.out.add(_table_text(child), heading=self.headings.path)
            elif tag == "br":
                self.loose.append("\n")
            else:
                if tag in _BLOCKS:
                    self.flush()
                stack.append((iter(child.children), tag in _BLOCKS))


def _inline_text(node) -> str:  # noqa: ANN001
    from bs4 import NavigableString

    parts = []
    for child in node.descendants:
        if type(child) is NavigableString:
            parts.append(re.sub(r"\s+", " ", str(child)))
        elif not isinstance(child, NavigableString) and child.name in ("br", *_BLOCKS):
            parts.append("\n" if child.name == "br" else " ")
    return "".join(parts)


def _table_text(table) -> str:  # noqa: ANN001
    rows = []
    for tr in table.find_all("tr"):
        cells = [" ".join(_inline_text(td).split()) for td in tr.find_all(("td", "th"))]
        if any(cells):
            rows.append("\t".join(cells))
    return "\n".join(rows)


def _clean(text: str) -> str:
    text = re.sub(r"[ \t]*\n[ \t]*", "\n", text)
    return re.sub(r"\n{2,}", "\n", text).strip()
