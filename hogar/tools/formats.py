"""Each model family's tool-call format (markers as llama.cpp's common/chat.cpp knows them), told from the chat
template's text, and the parser that splits a reply into text and calls.

    hermes   Qwen 2.5/3, Hermes 2 Pro / 3:  <tool_call>{"name": ..., "arguments": {...}}</tool_call>
    llama3   Llama 3.1-3.3:  {"name": ..., "parameters": {...}}, or after <|python_tag|>
    mistral  [TOOL_CALLS][{"name": ..., "arguments": {...}, "id": ...}]  or  [TOOL_CALLS]name[ARGS]{...}
    phi4     Phi-4-mini:  functools[{...}]  or  <|tool_call|>...<|/tool_call|>
    gemma    ```tool_code ... ``` (a Python call or JSON), or plain JSON
    generic  templates with no tool format: {"tool_calls": [{"name": ..., "arguments": {...}}]}

In every family a reply that is only JSON (a call, a list of calls, {"tool_calls": [...]}, maybe in a ```json fence)
is read as calls too: small models often drop the markers. A call naming a function that was not offered stays text.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from hogar.tools.regions import (
    BAD,
    MORE,
    Call,
    Region,
    RegionParser,
    bare,
    call_array,
    closed_by,
    mistral,
    object_or_array,
    python_calls,
    python_tag,
)
from hogar.tools.scan import skip_ws, starts_like


def _functools(text: str, i: int, names: Collection[str], final: bool) -> Region:
    return call_array(text, skip_ws(text, i), names)


def _tool_code(text: str, i: int, names: Collection[str], final: bool) -> Region:
    j = skip_ws(text, i)
    if j < len(text) and text[j] in "{[":
        return closed_by("```", object_or_array)(text, j, names, final)
    return python_calls("```")(text, i, names, final)


@dataclass
class Parsed:
    """A reply read from `start` on: `done` are the parts of text[start:settled], final whatever follows; `pending`
    are calls still open after settled (streamed as far as they go). A later, longer text may be read from settled."""

    done: list[str | Call]
    settled: int
    pending: list[Call] = field(default_factory=list)


@dataclass(frozen=True)
class ToolFormat:
    name: str
    markers: dict[str, RegionParser] = field(default_factory=dict)  # a marker -> what reads the calls after it
    native: bool = True  # the template itself lists the tools (else hogar's fallback system paragraph does)

    def parse(self, text: str, names: Collection[str], final: bool = True) -> list[str | Call]:
        """The reply as text parts and calls, in order. Not final (a reply still streaming): text that might yet
        turn out to be part of a call is left out, and a call inside markers whose name is read may come with
        partial arguments."""
        p = self.scan(text, names, final)
        return [*p.done, *p.pending]

    def scan(self, text: str, names: Collection[str], final: bool, start: int = 0) -> Parsed:
        """The reply from start (0, or the settled index of an earlier scan of a prefix of text) on."""
        pos = start
        parts: list[str | Call] = []
        if start == 0:
            pos = skip_ws(text, 0)
            if pos == len(text):
                return Parsed([text] if final else [], len(text) if final else 0)
            if not self._marker_prefix(text, pos):
                r = bare(text, pos, names, final) if text[pos] in "{[`" else Region(BAD)
                if r.end == MORE and not final:  # sent once it closes: until then it may turn out to be text
                    return Parsed([], 0)
                parts += r.calls if r.end >= 0 else []
                pos = r.end if r.end >= 0 else 0
        while True:
            at, marker = self._next_marker(text, pos)
            if marker is None:
                end = len(text) if final else len(text) - self._held(text, pos)
                return Parsed([*parts, text[pos:end]], end)
            parts.append(text[pos:at])
            r = self.markers[marker](text, at + len(marker), names, final)
            if r.end == MORE:
                return Parsed(parts, at, r.calls)
            if r.end == BAD:
                parts.append(marker)
                pos = at + len(marker)
            else:
                parts += r.calls
                pos = r.end

    def _next_marker(self, text: str, pos: int) -> tuple[int, str | None]:
        best, found = len(text), None
        for m in self.markers:
            k = text.find(m, pos, best + len(m) - 1)  # only a marker that starts before the best so far
            if 0 <= k < best:
                best, found = k, m
        return best, found

    def _marker_prefix(self, text: str, pos: int) -> bool:
        return any(text.startswith(m, pos) or starts_like(text, pos, m) for m in self.markers)

    def _held(self, text: str, pos: int) -> int:
        """How many characters at the end of text[pos:] could start a marker."""
        longest = max((len(m) for m in self.markers), default=0)
        for n in range(min(len(text) - pos, longest), 0, -1):
            if any(m.startswith(text[len(text) - n:]) for m in self.markers):
                return n
        return 0


HERMES = ToolFormat("hermes", {"<tool_call>": closed_by("</tool_call>", object_or_array)})
LLAMA3 = ToolFormat("llama3", {"<|python_tag|>": python_tag})
MISTRAL = ToolFormat("mistral", {"[TOOL_CALLS]": mistral})
PHI4 = ToolFormat("phi4", {"functools": _functools,
                           "<|tool_call|>": closed_by("<|/tool_call|>", object_or_array)})
GEMMA = ToolFormat("gemma", {"```tool_code": _tool_code}, native=False)
GENERIC = ToolFormat("generic", native=False)
FORMATS = {f.name: f for f in (HERMES, LLAMA3, MISTRAL, PHI4, GEMMA, GENERIC)}


def detect(template: str | None) -> ToolFormat:
    """The family's format from its chat template's text."""
    src = template or ""
    if "[TOOL_CALLS]" in src:
        return MISTRAL
    if "<tool_call>" in src:
        return HERMES
    if "<|python_tag|>" in src or ("<|start_header_id|>" in src and "tools" in src):
        return LLAMA3
    if "functools" in src or "<|tool|>" in src:
        return PHI4
    if "<start_of_turn>" in src:
        return GEMMA
    return GENERIC if "tools" not in src else HERMES


def split(parts: list[str | Call]) -> tuple[str | None, list[Call]]:
    """(content, calls) of a parsed reply: the text outside calls (None when there is none) and the calls."""
    calls = [p for p in parts if isinstance(p, Call)]
    text = "".join(p for p in parts if isinstance(p, str))
    if not calls:
        return text, []
    return (text.strip() or None), calls
