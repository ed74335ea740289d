"""Incremental scanning of JSON in generated text: where a value ends, or that it has not ended yet. The text may stop
anywhere (a reply being streamed), so every scanner answers one of three: the end index, MORE (the text so far is a
prefix of what it looks for) or BAD (it cannot be).

A streamed reply is scanned again at every token. Inside `resumable(memo)` the scanners keep their partial state in
the memo, keyed by where a value starts: the text only grows, so each character is scanned once however many times
the reply is parsed (a 10 KB call fed a few characters at a time would otherwise cost quadratic time)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

MORE, BAD = -1, -2
WS = " \t\r\n"
CALL_KEYS = frozenset({"name", "arguments", "parameters", "type", "id"})
_OUTSIDE_STOP = re.compile(r'["{}\[\]]')  # inside brackets, outside strings: what changes the scan's state
_STRING_STOP = re.compile(r'["\\\n\r]')


@dataclass
class _Open:
    """A value scanned up to `pos` without an end yet."""

    pos: int
    stack: list[str] = field(default_factory=list)
    in_string: bool = False


@dataclass
class ScanMemo:
    """One growing text's scans: values still open, values decided (end or BAD), calls decided."""

    open: dict[int, _Open] = field(default_factory=dict)
    ends: dict[int, int] = field(default_factory=dict)
    calls: dict[int, CallScan] = field(default_factory=dict)
    visited: int = 0  # characters the value scanner stepped over (the work a stream costs)


_memo: ContextVar[ScanMemo | None] = ContextVar("hogar_tools_scan_memo", default=None)


@contextmanager
def resumable(memo: ScanMemo) -> Iterator[None]:
    """Scans inside reuse and extend memo; only for a text that grows at its end."""
    token = _memo.set(memo)
    try:
        yield
    finally:
        _memo.reset(token)


def skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in WS:
        i += 1
    return i


def starts_like(text: str, i: int, word: str) -> bool:
    """Whether text[i:] is a (maybe empty) prefix of word: word may still come."""
    return len(text) - i <= len(word) and word.startswith(text[i:])


def scan_value(text: str, i: int) -> int:
    """The index after the JSON value starting at text[i] (no leading whitespace). Brackets and strings are matched;
    whether the inside is valid JSON is left to json.loads on the finished value."""
    if i >= len(text):
        return MORE
    if text[i] not in '"{[':
        j = i
        while j < len(text) and (text[j].isalnum() or text[j] in "+-."):
            j += 1
        if j == i:
            return BAD
        return MORE if j == len(text) else j
    memo = _memo.get()
    if memo is None:
        return _advance(text, _Open(i), None)
    if i in memo.ends:
        return memo.ends[i]
    state = memo.open.pop(i, None) or _Open(i)
    end = _advance(text, state, memo)
    if end == MORE:
        memo.open[i] = state
    else:
        memo.ends[i] = end
    return end


def _advance(text: str, st: _Open, memo: ScanMemo | None) -> int:
    """Scan on from st.pos, updating st; the value's end, MORE or BAD."""
    i, n, start, end = st.pos, len(text), st.pos, MORE
    while i < n:
        if st.in_string:
            m = _STRING_STOP.search(text, i)
            if m is None:
                i = n
                break
            i, c = m.start(), m.group()
            if c == "\\":
                i += 2  # may pass the end: the escaped character has not come yet, and is skipped when it does
                continue
            if c != '"':
                end = BAD  # a raw line break inside a string
                break
            st.in_string = False
            i += 1
            if not st.stack:
                end = i
                break
            continue
        c = text[i]
        if c == '"':
            st.in_string = True
            i += 1
            continue
        if c in "{[":
            st.stack.append(c)
        elif c in "}]":
            if not st.stack or "{[".index(st.stack.pop()) != "}]".index(c):
                end = BAD
                break
            if not st.stack:
                end = i + 1
                break
        i += 1
        m = _OUTSIDE_STOP.search(text, i)
        i = m.start() if m else n
    st.pos = i
    if memo is not None:
        memo.visited += min(i, n) - start
    return end


@dataclass
class CallScan:
    """One call object {"name": ..., "arguments": {...}} scanned so far."""

    end: int  # index after the object, or MORE / BAD
    name: str | None = None
    args_start: int | None = None  # where the arguments value starts (when it is an object)
    args_end: int | None = None  # where it ends, once it has
    args_text: str | None = None  # the arguments as a JSON object text, once the call is complete


def scan_call(text: str, i: int) -> CallScan:
    """A call object at text[i] ('{'): its name once read, its arguments as far as they go."""
    memo = _memo.get()
    if memo is not None and i in memo.calls:
        return memo.calls[i]
    out = _scan_call(text, i)
    if memo is not None and out.end != MORE:
        memo.calls[i] = out
    return out


def _scan_call(text: str, i: int) -> CallScan:
    out = CallScan(MORE)
    i = skip_ws(text, i + 1)
    while True:
        if i >= len(text):
            return out
        if text[i] == "}" and out.name is not None:
            return _finish(text, out, i + 1)
        if text[i] != '"':
            return CallScan(BAD)
        k = scan_value(text, i)
        if k < 0:
            return out if k == MORE else CallScan(BAD)
        key = _loads(text[i:k])
        if key not in CALL_KEYS:
            return CallScan(BAD)
        i = skip_ws(text, k)
        if i >= len(text):
            return out
        if text[i] != ":":
            return CallScan(BAD)
        i = skip_ws(text, i + 1)
        if i >= len(text):
            return out
        v = scan_value(text, i)
        if v == BAD:
            return CallScan(BAD)
        if key in ("arguments", "parameters"):
            if out.args_start is not None:
                return CallScan(BAD)
            out.args_start = i
            if v == MORE:
                return out
            out.args_end = v
        elif v == MORE:
            return out
        elif key == "name":
            name = _loads(text[i:v])
            if not isinstance(name, str) or not name:
                return CallScan(BAD)
            out.name = name
        i = skip_ws(text, v)
        if i >= len(text):
            return out
        if text[i] == ",":
            i = skip_ws(text, i + 1)
        elif text[i] != "}":
            return CallScan(BAD)


def _finish(text: str, out: CallScan, end: int) -> CallScan:
    args: object = {}
    if out.args_start is not None:
        args = _loads(text[out.args_start:out.args_end])
        if isinstance(args, str):  # some models write the arguments as a JSON string
            args = _loads(args)
    if not isinstance(args, dict):
        return CallScan(BAD)
    out.end = end
    raw = text[out.args_start:out.args_end] if out.args_start is not None else ""
    out.args_text = raw if raw.startswith("{") else json.dumps(args, ensure_ascii=False)
    return out


def _loads(text: str) -> object:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: a model's reply nested a thousand deep
        return None
