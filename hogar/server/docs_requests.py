"""The documents API's request helpers: upload sizes and names, the type check an upload passes before it is
stored, JSON bodies validated against the schemas, and OpenAI's cursor pages."""

from __future__ import annotations

import os
import unicodedata
from typing import TypeVar

from fastapi import Request
from pydantic import BaseModel

from hogar.server.app import ApiError, read_body

MAX_UPLOAD = 64 << 20
FORM_OVERHEAD = 64 << 10  # multipart boundaries, part headers and the purpose field, on top of the file itself
MAX_JSON = 1 << 20
_SNIFF = {"pdf": (b"%PDF",), "docx": (b"PK\x03\x04",)}
T = TypeVar("T", bound=BaseModel)


def parse_size(text: str) -> int:
    """'64M', '1G', '500k', '1048576' -> bytes (binary units)."""
    units = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    t = text.strip().lower().removesuffix("ib").removesuffix("b")
    unit = t[-1:] if t[-1:] in units and not t[-1:].isdigit() else ""
    number = t[: len(t) - len(unit)]
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"{text!r} is not a size; write bytes or a number with k, M or G (64M)") from None
    if value <= 0:
        raise ValueError(f"{text!r}: the size must be positive")
    return int(value * units[unit])


def safe_filename(name: str) -> str:
    """A client's file name reduced to a name to show: the last path part, no control characters, at most 200
    characters. It is never used as a path (the bytes are stored under the file id)."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    if name in (".", ".."):
        name = ""
    if len(name) > 200:
        stem, dot, suffix = name.rpartition(".")
        name = stem[: 200 - len(suffix) - 1] + dot + suffix if dot and len(suffix) < 16 else name[:200]
    return name or "upload"


def check_type(name: str, head: bytes) -> None:
    """Refuse what the library cannot read, before it is stored: by suffix, and by its first bytes where that is
    cheap (a PDF starts with %PDF, a .docx is a zip)."""
    from hogar.docs.parsers import HINTS, NAMES, SUFFIXES

    suffix = os.path.splitext(name)[1].lower()
    kind = SUFFIXES.get(suffix) or NAMES.get(name.lower())
    if kind is None:
        hint = f" ({HINTS[suffix]})" if suffix in HINTS else ""
        raise ApiError(400, f"{name}: unsupported file type {suffix or '(no suffix)'}{hint}; hogar reads PDF, DOCX, "
                            "HTML, Markdown, text and code files", param="file", code="unsupported_file")
    magic = _SNIFF.get(kind)
    if magic and not head.startswith(magic):
        raise ApiError(400, f"{name}: this is not a {kind.upper()} file (its first bytes say otherwise)",
                       param="file", code="invalid_file")


async def read_json(request: Request, schema: type[T]) -> T:
    """A documents request's JSON body (an empty one reads as {})."""
    return await read_body(request, schema, MAX_JSON, empty=True)


def page(items: list[dict], request: Request, *, key: str = "created_at") -> dict:
    """OpenAI's cursor pages: limit (1..100, default 20), order (desc by default), after / before an id."""
    q = request.query_params
    try:
        limit = int(q.get("limit", "20"))
    except ValueError:
        raise ApiError(400, "limit must be a number from 1 to 100", param="limit") from None
    if not 1 <= limit <= 100:
        raise ApiError(400, "limit must be a number from 1 to 100", param="limit")
    order = q.get("order", "desc")
    if order not in ("asc", "desc"):
        raise ApiError(400, "order must be asc or desc", param="order")
    items = sorted(items, key=lambda x: (x.get(key) or 0, x["id"]), reverse=order == "desc")
    ids = [x["id"] for x in items]
    if q.get("after") in ids:
        items = items[ids.index(q["after"]) + 1:]
    elif q.get("before") in ids:
        items = items[:ids.index(q["before"])][-limit:]
    more = len(items) > limit
    items = items[:limit]
    return {"object": "list", "data": items, "first_id": items[0]["id"] if items else None,
            "last_id": items[-1]["id"] if items else None, "has_more": more}
