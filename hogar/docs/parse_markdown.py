"""Markdown through markdown-it-py (CommonMark + tables): each top-level block is one Section holding its source lines
as written (a paragraph, a whole list, a blockquote, a table, a fenced code block with its fences); ATX and setext
headings build the heading path and are Sections of their own holding the heading's text without its markers. Front
matter (--- or +++ fenced at the top) is dropped; its `title:` is the title, else the first level-1 heading."""

from __future__ import annotations

import re

from hogar.docs.parsers import Builder, HeadingPath
from hogar.docs.types import Document

_FRONT_MATTER = re.compile(r"\A(---|\+\+\+)[ \t]*\n(.*?\n)?(?:---|\.\.\.|\+\+\+)[ \t]*(?:\n|\Z)", re.DOTALL)
_BLOCK_OPENERS = {"paragraph_open", "bullet_list_open", "ordered_list_open", "blockquote_open", "table_open", "fence",
                  "code_block", "html_block"}


def parse_markdown(name: str, text: str) -> Document:
    from markdown_it import MarkdownIt

    title = None
    front = _FRONT_MATTER.match(text)
    if front:
        found = re.search(r"^title:[ \t]*(.+)$", front.group(2) or "", re.MULTILINE)
        title = found.group(1).strip().strip("\"'") if found else None
        text = text[front.end():]
    lines = text.split("\n")
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    out, headings = Builder(), HeadingPath()
    for i, token in enumerate(tokens):
        if token.level != 0 or token.map is None:
            continue
        if token.type == "heading_open":
            heading = " ".join(tokens[i + 1].content.split())
            if heading:
                out.add(heading, heading=headings.enter(int(token.tag[1]), heading))
                title = title or (heading if token.tag == "h1" else None)
        elif token.type in _BLOCK_OPENERS:
            block = "\n".join(lines[token.map[0]:token.map[1]])
            if token.type == "html_block" and re.fullmatch(r"\s*<!--.*?-->\s*", block, re.DOTALL):
                continue
            out.add(block, heading=headings.path)
    return out.document(name, "markdown", title=title)
