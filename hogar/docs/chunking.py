"""Documents -> Chunks that the embedding model reads whole, following the document's structure.

Consecutive Sections of one page and one heading path form a group; chunks never cross groups (a heading that only
opens its subheadings joins the subheading's group, so "Guide > Install" starts with "Guide" and "Install"). Each
Section is cut into units at sentence ends; a unit still over the budget is cut at line breaks, then into runs of
words, then of characters. Units are packed greedily up to max_tokens; the next chunk of the group starts with the
last units of the previous one, about `overlap` tokens of whole sentences (or its last words when one sentence is
longer). Each unit is counted once and a chunk's count is the sum (exact for WordPiece, which splits at spaces), then
each chunk is counted once more to be sure: about two count_tokens calls per sentence, linear in the document."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from hogar.docs.parsers import is_heading_section
from hogar.docs.types import Chunk, Document, Section

_SENTENCE_END = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019)\]]*\s+"  # Latin: the punctuation, closing quotes, a space
                           r"|[\u3002\uff01\uff1f]+[\u300d\u300f\u201d\u2019\uff09]*\s*")  # CJK: no space needed
_LINE_END = re.compile(r"\n\s*")
_WORD = re.compile(r"\S+")


@dataclass
class _Unit:
    start: int
    end: int
    n: int  # tokens, special tokens excluded


def chunk_document(doc: Document, count_tokens: Callable[[str], int], max_tokens: int = 256,
                   overlap: int = 32) -> list[Chunk]:
    """count_tokens(text) is the embedding model's token count of text with its special tokens (so that every
    chunk's n_tokens <= max_tokens); overlap is in the same tokens (0: none)."""
    cutter = _Cutter(doc.text, count_tokens, max_tokens, overlap)
    chunks: list[Chunk] = []
    for sections in _groups(doc.sections):
        units = [unit for s in sections for unit in cutter.units(s.start, s.start + len(s.text))]
        last = sections[-1]
        chunks += cutter.pack(units, last.page, last.heading)
    return chunks


def _groups(sections: list[Section]) -> list[list[Section]]:
    groups: list[list[Section]] = []
    for s in sections:
        if groups and (groups[-1][-1].page, groups[-1][-1].heading) == (s.page, s.heading):
            groups[-1].append(s)
        elif groups and _opens(groups[-1], s):
            groups[-1].append(s)
        else:
            groups.append([s])
    return groups


def _opens(group: list[Section], s: Section) -> bool:
    """Whether `group` holds only headings that `s` sits under (the parent headings of its own heading)."""
    last = group[-1]
    return (last.page == s.page and last.heading is not None and s.heading is not None
            and s.heading.startswith(last.heading + " > ") and all(map(is_heading_section, group)))


class _Cutter:
    def __init__(self, text: str, count_tokens: Callable[[str], int], max_tokens: int, overlap: int) -> None:
        self.text, self.count_tokens = text, count_tokens
        self.special = max(0, count_tokens(""))
        if max_tokens <= self.special:
            raise ValueError(f"max_tokens ({max_tokens}) leaves no room after {self.special} special tokens")
        self.max_tokens, self.limit = max_tokens, max_tokens - self.special
        self.overlap = max(0, min(overlap, self.limit // 2))
        self.window = min(self.limit, max(16, self.overlap))  # the size of runs of words or characters

    def count(self, start: int, end: int) -> int:
        return max(0, self.count_tokens(self.text[start:end]) - self.special)

    def units(self, start: int, end: int) -> list[_Unit]:
        out: list[_Unit] = []
        for a, b in self._split(start, end, _SENTENCE_END):
            n = self.count(a, b)
            if n <= self.limit:
                out.append(_Unit(a, b, n))
                continue
            for c, d in self._split(a, b, _LINE_END):
                m = self.count(c, d) if (c, d) != (a, b) else n
                if m <= self.limit:
                    out.append(_Unit(c, d, m))
                else:
                    self._words(c, d, m, out)
        return out

    def _split(self, start: int, end: int, boundary: re.Pattern[str]) -> list[tuple[int, int]]:
        """The stripped pieces of text[start:end] between matches of `boundary`."""
        pieces, at = [], start
        for match in boundary.finditer(self.text, start, end):
            pieces.append((at, match.end()))
            at = match.end()
        pieces.append((at, end))
        return [span for a, b in pieces if (span := self._strip(a, b))]

    def _strip(self, start: int, end: int) -> tuple[int, int] | None:
        while start < end and self.text[start].isspace():
            start += 1
        while end > start and self.text[end - 1].isspace():
            end -= 1
        return (start, end) if start < end else None

    def _words(self, start: int, end: int, n: int, out: list[_Unit]) -> None:
        """Runs of whole words of about `window` tokens (estimated from the characters, then counted)."""
        words = [(m.start(), m.end()) for m in _WORD.finditer(self.text, start, end)]
        if len(words) == 1:
            return self._chars(start, end, n, out)
        budget = max(1, int(self.window * (end - start) / max(n, 1)))
        i = 0
        while i < len(words):
            j = i + 1
            while j < len(words) and words[j][1] - words[i][0] <= budget:
                j += 1
            a, b = words[i][0], words[j - 1][1]
            m = self.count(a, b)
            if m <= self.limit:
                out.append(_Unit(a, b, m))
            elif j - i == 1:
                self._chars(a, b, m, out)
            else:
                self._words(a, b, m, out)
            i = j
        return None

    def _chars(self, start: int, end: int, n: int, out: list[_Unit]) -> None:
        size = max(1, int(self.window * (end - start) / max(n, 1)))
        for a in range(start, end, size):
            b = min(end, a + size)
            m = self.count(a, b)
            if m <= self.limit or b - a == 1:
                out.append(_Unit(a, b, m))
            else:
                self._chars(a, b, m, out)

    def pack(self, units: list[_Unit], page: int | None, heading: str | None) -> list[Chunk]:
        chunks: list[Chunk] = []
        carry: list[_Unit] = []
        i = 0
        while i < len(units):
            while carry and sum(u.n for u in carry) + units[i].n > self.limit:
                carry.pop(0)
            j, total = i, sum(u.n for u in carry)
            while j < len(units) and total + units[j].n <= self.limit:
                total += units[j].n
                j += 1
            j = max(j, i + 1)  # a single unit over the limit (a character WordPiece cannot cut) goes alone
            start = carry[0].start if carry else units[i].start
            n = self.count_tokens(self.text[start:units[j - 1].end])
            while n > self.max_tokens and (j - i > 1 or carry):  # the sum was short (tokens across a cut): recount
                if j - i > 1:
                    j -= 1
                else:
                    carry.pop(0)
                start = carry[0].start if carry else units[i].start
                n = self.count_tokens(self.text[start:units[j - 1].end])
            end = units[j - 1].end
            chunks.append(Chunk(self.text[start:end], start, end, page, heading, n))
            carry = self._overlap(carry + units[i:j]) if j < len(units) else []
            i = j
        return chunks

    def _overlap(self, units: list[_Unit]) -> list[_Unit]:
        """The last units of a chunk adding up to about `overlap` tokens: whole units when they fit, else the last
        unit's last words."""
        if not self.overlap:
            return []
        carry, total = [], 0
        for u in reversed(units[1:]):  # never the whole chunk
            if total + u.n > self.overlap:
                break
            carry.insert(0, u)
            total += u.n
        if carry or len(units) == 0:
            return carry
        last = units[-1]
        words = [m.start() for m in _WORD.finditer(self.text, last.start, last.end)]
        budget = int(self.overlap * (last.end - last.start) / max(last.n, 1))
        for at in words[1:]:
            if last.end - at <= budget:
                n = self.count(at, last.end)
                return [_Unit(at, last.end, n)] if n <= self.overlap * 3 // 2 else []
        return []
