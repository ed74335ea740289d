"""What Ollama's /api/tags, /api/show and /api/ps say about a model, read from the GGUF header (no weights loaded):
the name with its tag, size, digest, modification time and details {format, family, parameter_size,
quantization_level}; model_info (the header's metadata) and capabilities."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from hogar.gguf import open_gguf
from hogar.quantize.mix import quantization_name

LATEST = ":latest"
_facts: dict[tuple[Path, float], dict[str, Any]] = {}


def base_name(name: str) -> str:
    """Ollama's names carry a tag; hogar's ":latest" is the name alone. Other tags stay (a Hub reference's quant)."""
    return name.removesuffix(LATEST)


def tagged(name: str) -> str:
    return name if ":" in name else name + LATEST


def timestamp(t: float | None = None) -> str:
    """RFC 3339 in UTC, as Ollama writes its times."""
    when = datetime.now(UTC) if t is None else datetime.fromtimestamp(t, UTC)
    return when.isoformat().replace("+00:00", "Z")


def _parameter_size(n: int) -> str:
    return f"{n / 1e9:.1f}B" if n >= 1e9 else f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.2f}K"


def _json_value(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, list) and len(v) > 64:  # the vocabulary and merges, as Ollama leaves them out (not verbose)
        return None
    return v


def _digest(path: Path, st_size: int, st_mtime: float) -> str:
    """A pulled model's file sha256 where the library knows it; otherwise an id of the file (path, size, time), not a
    hash of its bytes (hashing a GiB on every listing is not worth it)."""
    from hogar.hub import library

    for entry in library.entries():
        if entry.path.resolve() == path and entry.sha256:
            return entry.sha256
    return hashlib.sha256(f"{path}:{st_size}:{st_mtime}".encode()).hexdigest()


def facts(path: Path) -> dict[str, Any]:
    """A model file's header facts, cached by (path, modification time). Raises what open_gguf raises."""
    path = path.resolve()
    st = path.stat()
    key = (path, st.st_mtime)
    if key not in _facts:
        gf = open_gguf(path)
        try:
            meta, arch = gf.metadata, gf.architecture
            n_params = sum(t.n_elements for t in gf.tensors.values())
            tokens = meta.get("tokenizer.ggml.tokens")
            template = meta.get("tokenizer.chat_template")
            embedding = f"{arch}.pooling_type" in meta or meta.get(f"{arch}.attention.causal") is False
            _facts[key] = {
                "size": st.st_size, "modified_at": timestamp(st.st_mtime),
                "digest": _digest(path, st.st_size, st.st_mtime),
                "details": {"parent_model": "", "format": "gguf", "family": arch, "families": [arch],
                            "parameter_size": _parameter_size(n_params),
                            "quantization_level": quantization_name(meta, gf.tensors)},
                "n_params": n_params, "n_ctx_train": meta.get(f"{arch}.context_length"),
                "template": template if isinstance(template, str) else "",
                "license": str(meta.get("general.license", "")),
                "embedding": embedding,
                "tools": isinstance(template, str) and "tools" in template,
                "fim": (tokens is not None and "<|fim_prefix|>" in tokens) or "tokenizer.ggml.fim_pre_token_id" in meta,
                "model_info": {**{k: _json_value(v) for k, v in meta.items() if k != "tokenizer.chat_template"},
                               "general.parameter_count": n_params},
            }
        finally:
            gf.close()
    return _facts[key]


def capabilities(f: dict[str, Any]) -> list[str]:
    if f["embedding"]:
        return ["embedding"]
    return ["completion"] + (["tools"] if f["tools"] else []) + (["insert"] if f["fim"] else [])


def tag_entry(name: str, path: Path) -> dict[str, Any]:
    """One model of /api/tags."""
    f = facts(path)
    return {"name": tagged(name), "model": tagged(name), "modified_at": f["modified_at"], "size": f["size"],
            "digest": f["digest"], "details": f["details"]}


def ps_entry(name: str, path: Path, n_ctx: int, expires: float | None) -> dict[str, Any]:
    """One loaded model of /api/ps; expires: a Unix time, None for never (Ollama's keep_alive < 0)."""
    f = facts(path)
    if expires is None:
        expires_at = (datetime.now(UTC) + timedelta(days=292 * 365)).isoformat().replace("+00:00", "Z")
    else:
        expires_at = timestamp(expires)
    return {"name": tagged(name), "model": tagged(name), "size": f["size"], "digest": f["digest"],
            "details": f["details"], "expires_at": expires_at, "size_vram": 0, "context_length": n_ctx}


def show(path: Path) -> dict[str, Any]:
    """/api/show's answer (`verbose` is not served: the vocabulary lists stay out)."""
    f = facts(path)
    return {"license": f["license"], "modelfile": f"# hogar serves this GGUF file as it is\nFROM {path}\n",
            "parameters": "", "template": f["template"], "details": f["details"], "model_info": f["model_info"],
            "capabilities": capabilities(f), "modified_at": f["modified_at"]}
