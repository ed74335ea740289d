"""The call regions of each format: what follows a marker (`<tool_call>`, `[TOOL_CALLS]`, `functools`...) or a bare
JSON reply, read into calls. A region parser gets the text and the index after its marker and answers a Region: its
end, MORE (not decided yet; `calls` holds what can already be streamed) or BAD (it is text, not calls)."""

from __future__ import annotations

import ast
import json
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from hogar.tools.scan import BAD, MORE, scan_call, scan_value, skip_ws, starts_like


@dataclass
class Call:
    name: str
    arguments: str  # a JSON object text; a prefix of it while `done` is False
    done: bool = True


@dataclass
class Region:
    end: int
    calls: list[Call] = field(default_factory=list)


RegionParser = Callable[[str, int, Collection[str], bool], Region]


def call_object(text: str, i: int, names: Collection[str]) -> Region:
    """One {"name": ..., "arguments"|"parameters": {...}} at text[i]."""
    s = scan_call(text, i)
    if s.end == BAD or (s.name is not None and s.name not in names):
        return Region(BAD)
    if s.end == MORE:
        if s.name is None:
            return Region(MORE)
        partial = ""
        if s.args_start is not None and text[s.args_start] == "{":
            partial = text[s.args_start:s.args_end]
        return Region(MORE, [Call(s.name, partial, False)])
    return Region(s.end, [Call(s.name, s.args_text or "{}")])


def call_array(text: str, i: int, names: Collection[str]) -> Region:
    """[call, call, ...] at text[i]."""
    if i >= len(text):
        return Region(MORE)
    if text[i] != "[":
        return Region(BAD)
    calls: list[Call] = []
    i = skip_ws(text, i + 1)
    while True:
        if i >= len(text):
            return Region(MORE, calls)
        if text[i] == "]" and calls:
            return Region(i + 1, calls)
        if text[i] != "{":
            return Region(BAD)
        r = call_object(text, i, names)
        if r.end < 0:
            return Region(r.end, calls + r.calls if r.end == MORE else [])
        calls += r.calls
        i = skip_ws(text, r.end)
        if i < len(text) and text[i] == ",":
            i = skip_ws(text, i + 1)
        elif i < len(text) and text[i] != "]":
            return Region(BAD)


def closed_by(closer: str, inner: Callable[[str, int, Collection[str]], Region], *, optional_at_end: bool = True
              ) -> RegionParser:
    """Calls followed by a closing marker (`</tool_call>`); at the end of a finished reply the marker may be missing."""

    def parse(text: str, i: int, names: Collection[str], final: bool) -> Region:
        i = skip_ws(text, i)
        r = inner(text, i, names)
        if r.end < 0:
            return r
        j = skip_ws(text, r.end)
        if text.startswith(closer, j):
            return Region(j + len(closer), r.calls)
        if starts_like(text, j, closer):  # the marker is still coming
            return Region(j if final and optional_at_end else MORE, r.calls)
        return Region(r.end, r.calls) if optional_at_end else Region(BAD)

    return parse


def object_or_array(text: str, i: int, names: Collection[str]) -> Region:
    if i >= len(text):
        return Region(MORE)
    return call_array(text, i, names) if text[i] == "[" else call_object(text, i, names) if text[i] == "{" \
        else Region(BAD)


def mistral(text: str, i: int, names: Collection[str], final: bool) -> Region:
    """[TOOL_CALLS][{...}, ...] (Mistral Nemo) or [TOOL_CALLS]name[ARGS]{...} (Mistral Small 3.2, Devstral)."""
    i = skip_ws(text, i)
    if i >= len(text):
        return Region(MORE)
    if text[i] == "[":
        return call_array(text, i, names)
    longest = max((len(n) for n in names), default=0) + len("[ARGS]")
    k = text.find("[ARGS]", i, i + longest + 8)  # a name, maybe with spaces around it
    if k < 0:
        return Region(MORE if not final and any(starts_like(text, i, n + "[ARGS]") for n in names) else BAD)
    name = text[i:k].strip()
    if name not in names:
        return Region(BAD)
    j = skip_ws(text, k + len("[ARGS]"))
    if j >= len(text):
        return Region(MORE, [Call(name, "", False)])
    v = scan_value(text, j) if text[j] == "{" else BAD
    if v == BAD:
        return Region(BAD)
    if v == MORE:
        return Region(MORE, [Call(name, text[j:], False)])
    try:
        ok = isinstance(json.loads(text[j:v]), dict)
    except ValueError:
        ok = False
    return Region(v, [Call(name, text[j:v])]) if ok else Region(BAD)


def bare(text: str, i: int, names: Collection[str], final: bool) -> Region:
    """A reply that is only JSON: a call, a list of calls or {"tool_calls": [...]}, maybe in a ``` fence."""
    fenced = text.startswith("```", i)
    if fenced:
        nl = text.find("\n", i, i + 64)
        if nl < 0:
            opening = text[i + 3:i + 64]
            return Region(MORE if not final and len(text) < i + 64 and opening.strip() in ("", "j", "js", "jso", "json")
                          else BAD)
        if text[i + 3:nl].strip() not in ("", "json"):
            return Region(BAD)
        i = nl + 1
    i = skip_ws(text, i)
    r = _tool_calls_object(text, i, names) if _starts_tool_calls(text, i) else object_or_array(text, i, names)
    if r.end < 0 or not fenced:
        return r
    j = skip_ws(text, r.end)
    if text.startswith("```", j):
        return Region(j + 3, r.calls)
    return Region(MORE, r.calls) if not final and starts_like(text, j, "```") else Region(BAD)


def _starts_tool_calls(text: str, i: int) -> bool:
    if not text.startswith("{", i):
        return False
    k = skip_ws(text, i + 1)
    return k < len(text) and (text.startswith('"tool_calls"', k) or starts_like(text, k, '"tool_calls"'))


def _tool_calls_object(text: str, i: int, names: Collection[str]) -> Region:
    """{"tool_calls": [...]} (the generic format the fallback prompt asks for)."""
    k = skip_ws(text, i + 1)
    if not text.startswith('"tool_calls"', k):
        return Region(MORE)
    k = skip_ws(text, k + len('"tool_calls"'))
    if k >= len(text):
        return Region(MORE)
    if text[k] != ":":
        return Region(BAD)
    r = call_array(text, skip_ws(text, k + 1), names)
    if r.end < 0:
        return r
    j = skip_ws(text, r.end)
    if j >= len(text):
        return Region(MORE, r.calls)
    return Region(j + 1, r.calls) if text[j] == "}" else Region(BAD)


def python_calls(closer: str) -> RegionParser:
    """Python call syntax, one call a line (Gemma's ```tool_code, Llama's <|python_tag|>brave_search.call(...)):
    read with ast (never evaluated), keyword arguments with literal values only. Streamed whole, once closed."""

    def parse(text: str, i: int, names: Collection[str], final: bool) -> Region:
        k = text.find(closer, i) if closer else -1
        if k < 0 and not final:
            return Region(MORE)
        end = k + len(closer) if k >= 0 else len(text)
        calls = _python_calls(text[i:k if k >= 0 else len(text)], names)
        return Region(end, calls) if calls else Region(BAD)

    return parse


def _python_calls(source: str, names: Collection[str]) -> list[Call]:
    try:
        tree = ast.parse(source.strip(), mode="exec")
    except (SyntaxError, ValueError, RecursionError):
        return []
    calls = []
    for stmt in tree.body:
        if not isinstance(stmt, ast.Expr) or not isinstance(stmt.value, ast.Call) or stmt.value.args:
            return []
        func = stmt.value.func
        if isinstance(func, ast.Attribute) and func.attr == "call" and isinstance(func.value, ast.Name):
            func = func.value  # Llama's builtin tools: brave_search.call(query=...)
        if not isinstance(func, ast.Name) or func.id not in names:
            return []
        try:
            args = {kw.arg: ast.literal_eval(kw.value) for kw in stmt.value.keywords if kw.arg}
            text = json.dumps(args, ensure_ascii=False)
        except (ValueError, TypeError, SyntaxError, RecursionError):
            return []
        calls.append(Call(func.id, text))
    return calls


def python_tag(text: str, i: int, names: Collection[str], final: bool) -> Region:
    """Llama 3.x after <|python_tag|>: JSON calls separated by ';', or a builtin tool's Python call."""
    j = skip_ws(text, i)
    if j >= len(text):
        return Region(MORE)
    if text[j] not in "{[":
        return python_calls("")(text, j, names, final)
    calls: list[Call] = []
    while True:
        r = object_or_array(text, j, names)
        if r.end < 0:
            return Region(r.end, calls + r.calls if r.end == MORE else [])
        calls += r.calls
        k = skip_ws(text, r.end)
        if k == len(text) and not final:  # a ';' and another call may follow
            return Region(MORE, calls)
        if not text.startswith(";", k):
            return Region(r.end, calls)
        j = skip_ws(text, k + 1)
