"""Answers grounded in retrieved passages: the passages go into the conversation numbered [1], [2]..., the model is told
to cite them, and the numbers it cites are read back from its answer. Used by `hogar docs ask`, `hogar chat --docs` and
the server's file_search tool alike."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from hogar.docs.types import Hit

INSTRUCTIONS = (
    "Answer the question using only the numbered sources below. After each sentence that uses a source, cite it "
    "with its number in square brackets, like [1] or [2][3]. If the sources do not contain the answer, say that they "
    "do not, and do not make one up."
)
CITATION = re.compile(r"\[(\d{1,3})\]")


def where(hit: Hit) -> str:
    """'guide.pdf, page 3' / 'README.md > Install' : how a source is named to the model and to the user."""
    c = hit.chunk
    name = c.filename or c.source.rsplit("/", 1)[-1]
    parts = [name]
    if c.page is not None:
        parts.append(f"page {c.page}")
    if c.heading:
        parts.append(c.heading)
    return ", ".join(parts)


def sources_block(hits: Sequence[Hit]) -> str:
    return "\n\n".join(f"[{i}] ({where(h)})\n{h.chunk.text.strip()}" for i, h in enumerate(hits, 1))


def grounded_messages(messages: Sequence[Mapping[str, Any]], hits: Sequence[Hit]) -> list[dict[str, Any]]:
    """The conversation with the sources put before the last user message's question (small models follow
    instructions that sit next to the question better than a far-away system prompt)."""
    out = [dict(m) for m in messages]
    last = max((i for i, m in enumerate(out) if m.get("role") == "user"), default=None)
    if last is None:
        return out
    question = out[last].get("content")
    if isinstance(question, list):  # OpenAI content parts: keep the text ones
        question = "\n".join(p.get("text", "") for p in question if isinstance(p, Mapping) and p.get("type") == "text")
    if not hits:
        return out
    out[last] = {**out[last], "content": f"{INSTRUCTIONS}\n\nSources:\n\n{sources_block(hits)}\n\n"
                                         f"Question: {question}"}
    return out


def query_of(messages: Sequence[Mapping[str, Any]]) -> str:
    """What to search for: the last user message's text."""
    for m in reversed(messages):
        if m.get("role") == "user":
            content = m.get("content")
            if isinstance(content, list):
                return "\n".join(p.get("text", "") for p in content if isinstance(p, Mapping))
            return str(content or "")
    return ""


def cited(answer: str, n_sources: int) -> list[int]:
    """The source numbers an answer cites (1-based, in order of first citation, only ones that exist)."""
    seen: list[int] = []
    for m in CITATION.finditer(answer):
        i = int(m.group(1))
        if 1 <= i <= n_sources and i not in seen:
            seen.append(i)
    return seen


def sources_json(hits: Sequence[Hit]) -> list[dict[str, Any]]:
    """The sources as the server returns them with an answer (`sources` in the response)."""
    return [{"index": i, **h.to_json(), "where": where(h)} for i, h in enumerate(hits, 1)]
