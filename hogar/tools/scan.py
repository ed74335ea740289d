"""Incremental scanning of JSON in generated text: where a value ends, or that it has not ended yet. The text may stop
anywhere (a reply being streamed), so every scanner answers one of three: the end index, MORE (the text so far is a
prefix of what it looks for) or BAD (it cannot be)."""

from __future__ import annotations

import json
from dataclasses import dataclass

MORE, BAD = -1, -2
WS = " \t\r\n"
CALL_KEYS = frozenset({"name", "arguments", "parameters", "type", "id"})


def skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in WS:
        i += 1
    return i


def scan_string(text: str, i: int) -> int:
    """text[i] is '"': the index after the closing quote."""
    i += 1
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            return i + 1
        if c in "\n\r":
            return BAD
        i += 1
    return MORE


def scan_value(text: str, i: int) -> int:
    """The index after the JSON value starting at text[i] (no leading whitespace). Brackets and strings are matched;
    whether the inside is valid JSON is left to json.loads on the finished value."""
    if i >= len(text):
        return MORE
    c = text[i]
    if c == '"':
        return scan_string(text, i)
    if c in "{[":
        stack = [c]
        i += 1
        while i < len(text):
            c = text[i]
            if c == '"':
                i = scan_string(text, i)
                if i < 0:
                    return i
                continue
            if c in "{[":
                stack.append(c)
            elif c in "}]":
                if "{[".index(stack.pop()) != "}]".index(c):
                    return BAD
                if not stack:
                    return i + 1
            i += 1
        return MORE
    j = i
    while j < len(text) and (text[j].isalnum() or text[j] in "+-."):
        j += 1
    if j == i:
        return BAD
    return MORE if j == len(text) else j


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
    out = CallScan(MORE)
    i = skip_ws(text, i + 1)
    while True:
        if i >= len(text):
            return out
        if text[i] == "}" and out.name is not None:
            return _finish(text, out, i + 1)
        if text[i] != '"':
            return CallScan(BAD)
        k = scan_string(text, i)
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
    except ValueError:
        return None
