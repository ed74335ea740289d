"""Hub references as users type them: `owner/repo` (the default quantization), `owner/repo:Q4_K_M` (as
`llama-server -hf` and Ollama's `hf.co/owner/repo:Q4_K_M` take it), `owner/repo/path/file.gguf`, each optionally
behind `hf.co/` or `https://huggingface.co/` and followed by `@revision`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from hogar.errors import HogarError

DEFAULT_QUANT = "Q4_K_M"
_PREFIXES = ("https://huggingface.co/", "http://huggingface.co/", "huggingface.co/", "hf.co/")
_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class HubRefError(HogarError):
    pass


@dataclass(frozen=True)
class HubRef:
    repo: str  # owner/name
    quant: str | None = None  # a quantization to pick among the repo's GGUF files
    file: str | None = None  # a path inside the repo
    revision: str = "main"

    def __str__(self) -> str:
        text = self.repo + (f"/{self.file}" if self.file else "") + (f":{self.quant}" if self.quant else "")
        return text + (f"@{self.revision}" if self.revision != "main" else "")


def looks_like_ref(text: str) -> bool:
    """Whether a model argument names a Hub repo rather than a local name or path."""
    t = text
    for p in _PREFIXES:
        if t.startswith(p):
            return True
    parts = t.split("@", 1)[0].split(":", 1)[0].split("/")
    return len(parts) >= 2 and all(_PART.match(p) for p in parts[:2]) and not t.startswith(("/", ".", "~"))


def parse_ref(text: str) -> HubRef:
    t = text.strip()
    for p in _PREFIXES:
        if t.startswith(p):
            t = t[len(p) :]
            break
    revision = "main"
    if "@" in t:
        t, revision = t.rsplit("@", 1)
    quant = None
    if ":" in t:
        t, quant = t.rsplit(":", 1)
        quant = quant.strip() or None
    parts = [p for p in t.split("/") if p]
    if len(parts) < 2 or not all(_PART.match(p) for p in parts[:2]) or not revision:
        raise HubRefError(f"{text!r} is not a Hub reference; write owner/repo, owner/repo:Q4_K_M or "
                          "owner/repo/file.gguf")
    file = "/".join(parts[2:]) or None
    if file and quant:
        raise HubRefError(f"{text!r} names both a file and a quantization; give one of them")
    return HubRef(f"{parts[0]}/{parts[1]}", quant, file, revision)
