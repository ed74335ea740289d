"""Tool call ids: OpenAI's call_<hex>; Mistral's templates insist on 9 letters and digits."""

from __future__ import annotations

import hashlib
import re
import uuid

from hogar.tools.formats import ToolFormat

MISTRAL_ID = re.compile(r"[A-Za-z0-9]{9}")


def call_id(fmt: ToolFormat) -> str:
    if fmt.name == "mistral":
        return uuid.uuid4().hex[:9]
    return f"call_{uuid.uuid4().hex[:24]}"


def template_id(fmt: ToolFormat, given: str) -> str:
    """An id as the template accepts it: a Mistral template gets a 9-character one made from the id given (the same
    id always maps to the same one, so a call and its result still match)."""
    if fmt.name != "mistral" or MISTRAL_ID.fullmatch(given):
        return given
    return hashlib.sha256(given.encode()).hexdigest()[:9]
